"""The base of the API's request bodies."""

from pydantic import BaseModel, ConfigDict


class Body(BaseModel):
    """A request body that refuses fields it does not know (422 naming them): a typo (`stgae`) or a field changed
    elsewhere (`stage`, which only /advance moves) would otherwise be dropped under a 200 that changed nothing."""

    model_config = ConfigDict(extra="forbid")
