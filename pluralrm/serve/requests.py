"""Request bodies of the reward server (pydantic), built for the server's limits.

Field errors become 422 answers whose message names the field (``body.responses.3: String
should have at most 20000 characters``). Item counts over the limit are answered 413 by the
app (:func:`check_items`), since they are a size limit rather than a malformed field.

Prompts and responses may be strings or chat messages (TRL's conversational format: a prompt
is a list of ``{"role", "content"}`` messages, a response the messages after it), rendered as
:mod:`pluralrm.integrations.conversation` renders them; a malformed message is a 422 naming it
(``body.prompts.0.1.content: is missing``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, model_validator

from pluralrm.errors import DataError
from pluralrm.integrations.conversation import completion_text, prompt_text
from pluralrm.score.normalize import NORMALIZATIONS
from pluralrm.score.rules import RULES


@dataclass(frozen=True)
class Limits:
    """Request size limits: body bytes (413), items per request (413), characters per text (422)."""

    max_body_bytes: int = 1 << 20
    max_items: int = 1024
    max_text_chars: int = 20_000


def request_models(limits: Limits) -> tuple[type[BaseModel], type[BaseModel]]:
    """``(ScoreRequest, CompareRequest)`` with text lengths capped at ``limits.max_text_chars``."""
    Text = Annotated[str, StringConstraints(max_length=limits.max_text_chars)]
    Prompt = Annotated[Text, BeforeValidator(_chat(prompt_text))]
    Response = Annotated[Text, BeforeValidator(_chat(completion_text))]
    Prompts = Annotated[list[Text], BeforeValidator(_chats(prompt_text))]
    Responses = Annotated[list[Text], BeforeValidator(_chats(completion_text))]
    Label = Annotated[str, StringConstraints(max_length=1000)]
    GroupSpec = Label | dict[Label, Label]
    Rule = Literal[tuple(RULES)]  # type: ignore[valid-type]
    Normalize = Literal[tuple(NORMALIZATIONS)]  # type: ignore[valid-type]

    class ScoreRequest(BaseModel):
        """``POST /score``: rewards of responses to prompts.

        ``groups``: one spec for every row (``"country=NG"`` or ``{"country": "NG"}``), a list
        of one spec per row, or omitted (the shared reward). ``all_groups``: every group of the
        model instead, with an optional ``aggregate`` rule over them (candidate sets: rows with
        the same prompt), ``weights`` (``"population"`` or numbers), ``normalize`` and the
        rule's ``q`` / ``temperature``. ``risk``: α in (0, 1) scores by the lower α-quantile
        of the predicted reward distribution (models with a distributional head).
        """

        model_config = ConfigDict(extra="forbid")
        prompts: Prompts
        responses: Responses
        groups: GroupSpec | list[GroupSpec] | None = None
        all_groups: bool = False
        aggregate: Rule | None = None
        weights: Literal["population"] | list[float] | None = None
        normalize: Normalize = "none"
        q: float | None = Field(default=None, ge=0.0, le=1.0)
        temperature: float | None = Field(default=None, gt=0.0)
        risk: float | None = Field(default=None, gt=0.0, lt=1.0)

        @model_validator(mode="after")
        def _consistent(self) -> "ScoreRequest":
            if len(self.responses) != len(self.prompts):
                raise FieldError("responses", f"{len(self.responses)} responses for {len(self.prompts)} prompts")
            if isinstance(self.groups, list) and len(self.groups) != len(self.prompts):
                raise FieldError("groups", f"a list of groups needs one per row: {len(self.groups)} for "
                                             f"{len(self.prompts)} rows")
            if self.all_groups and self.groups is not None:
                raise FieldError("groups", "give groups or all_groups, not both")
            uses_rule = (self.weights is not None or self.normalize != "none" or self.q is not None
                         or self.temperature is not None)
            if (self.aggregate is not None or uses_rule) and not self.all_groups:
                raise FieldError("aggregate", "aggregating over groups needs all_groups: true")
            if uses_rule and self.aggregate is None:
                raise FieldError("aggregate", "weights, normalize, q and temperature need an aggregate rule")
            return self

    class CompareRequest(BaseModel):
        """``POST /compare``: P(a ≻ b) for one prompt under each group of ``groups`` (a spec or
        a list of specs; omitted = every group of the model)."""

        model_config = ConfigDict(extra="forbid")
        prompt: Prompt
        a: Response
        b: Response
        groups: GroupSpec | list[GroupSpec] | None = None

    return ScoreRequest, CompareRequest


def _chat(render):
    """A before-validator of one text field: chat messages → text (errors name the message)."""
    def convert(value: Any) -> Any:
        if not isinstance(value, list):
            return value
        try:
            return render(value, "")
        except DataError as e:
            raise FieldError(e.field.lstrip(".") or "messages", e.reason) from None
    return convert


def _chats(render):
    """A before-validator of a list of texts: each row's chat messages → text (errors name the row)."""
    def convert(values: Any) -> Any:
        if not isinstance(values, list):
            return values
        out = []
        for i, v in enumerate(values):
            if isinstance(v, list):
                try:
                    v = render(v, str(i))
                except DataError as e:
                    raise FieldError(e.field, e.reason) from None
            out.append(v)
        return out
    return convert


class FieldError(ValueError):
    """A request field is invalid; ``field`` names it."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(f"{field}: {message}")


def check_items(body: Any, limits: Limits) -> str | None:
    """The 413 message when a list field has more items than ``limits.max_items``, else None."""
    for name in ("prompts", "responses", "groups"):
        value = getattr(body, name, None)
        if isinstance(value, list) and len(value) > limits.max_items:
            return f"{name}: {len(value)} items, more than this server's limit of {limits.max_items} per request"
    return None


__all__ = ["FieldError", "Limits", "check_items", "request_models"]
