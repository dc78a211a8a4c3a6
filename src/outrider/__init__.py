"""The `outrider` command line: offline stats, the shipper, the local stack."""
