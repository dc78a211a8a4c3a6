"""Write every dashboard to dashboards/<uid>.json (sorted keys, stable uids: the diff shows what changed)."""

import json
from pathlib import Path

from dashboards.src.build import dashboards

OUT = Path(__file__).parents[1]

for name, body in dashboards().items():
    (OUT / name).write_text(json.dumps(body, indent=2, sort_keys=True) + "\n")
    print(f"wrote dashboards/{name}")
