"""Request and response schemas of the assignment API.

Responses have fixed pydantic models. Requests depend on the model being served
(its feature columns, whether it reads categories or channels), so their schemas are
built per model by `RequestSchemas.for_model` and re-built on every reload; the
OpenAPI document is generated from them (see `segwise.serve.app`).

Validation rules for every request: unknown fields, missing fields, wrong JSON
types (``"12"`` or ``true`` for a number), NaN and infinities, and values out of
range are refused with 422 naming the field. Ranges come from each feature's
unit: shares lie in [0, 1], ratios in [-1, 1], counts, durations and bits are not
negative, and no number exceeds `MAX_ABS_VALUE` in size.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated, Any, Optional

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from typing_extensions import NotRequired, Required, TypedDict

from segwise.errors import SegwiseError
from segwise.features.base import FeatureColumn

__all__ = [
    "MAX_ABS_VALUE", "MAX_ID_LENGTH", "MAX_TEXT_LENGTH", "Assignment", "AssignResponse", "BatchAssignment",
    "BatchResponse", "CustomerValue", "VALUE_FIELDS",
    "SegmentInfo", "SegmentsResponse", "FeatureInfo", "ModelInfo", "Health", "Readiness", "ReloadResponse",
    "ErrorResponse", "ValidationIssue", "ValidationErrorResponse", "RequestSchemas", "AssignRequest",
    "InvalidRequest", "value_bounds",
]

#: Largest absolute value of any number in a request (amounts, features).
MAX_ABS_VALUE = 1e12
MAX_ID_LENGTH = 256
MAX_TEXT_LENGTH = 256

_STRICT = ConfigDict(extra="forbid", strict=True)


class InvalidRequest(SegwiseError):
    """A request that fails validation: ``errors`` are ``{"type", "loc", "msg"}`` dicts."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(f"{len(errors)} validation error(s)")
        self.errors = errors


def issue(loc: tuple, msg: str, type_: str = "value_error") -> dict[str, Any]:
    """One validation issue in the response format (``loc`` starts with ``"body"``)."""
    return {"type": type_, "loc": ["body", *loc], "msg": msg}


def _issues(exc: ValidationError) -> list[dict[str, Any]]:
    # The offending input is left out on purpose: it may be personal data.
    return [issue(tuple(e["loc"]), e["msg"], e["type"]) for e in exc.errors(include_url=False, include_input=False)]


# --------------------------------------------------------------------------- responses


class ValidationIssue(BaseModel):
    type: str = Field(description="Kind of problem, e.g. missing, extra_forbidden, float_type, finite_number.")
    loc: list[str | int] = Field(description="Where: 'body' then the field path, e.g. body.features.recency_days.")
    msg: str = Field(description="What is wrong.")


class ValidationErrorResponse(BaseModel):
    detail: list[ValidationIssue]

    model_config = ConfigDict(json_schema_extra={"examples": [{"detail": [
        {"type": "missing", "loc": ["body", "features", "recency_days"], "msg": "Field required"},
    ]}]})


class ErrorResponse(BaseModel):
    detail: str

    model_config = ConfigDict(json_schema_extra={"examples": [{"detail": "missing or invalid bearer token"}]})


class Assignment(BaseModel):
    customer_id: str
    segment_id: int = Field(description="Segment id (0 = most valuable).")
    segment_name: str
    confidence: float = Field(ge=0, le=1, description="How sure the assignment is, in [0, 1] (method-specific).")


class CustomerValue(BaseModel):
    """A customer's predicted value, from the model's BG/NBD and Gamma-Gamma parameters (no refit)."""

    expected_purchases_90d: float = Field(ge=0, description="Expected purchases in the 90 days after as_of (BG/NBD).")
    expected_purchases_365d: float = Field(ge=0, description="Expected purchases in the 365 days after as_of (BG/NBD).")
    p_alive: float = Field(ge=0, le=1, description="Probability that the customer is still active at as_of (BG/NBD).")
    clv_365d: float = Field(
        ge=0, description="Predicted value over the 365 days after as_of, discounted (expected purchases times "
        "the Gamma-Gamma expected spend per purchase, times the model's margin), in the currency of the amounts.",
    )


class AssignResponse(Assignment):
    probabilities: Optional[list[float]] = Field(
        description="Membership probability of each segment (item i is segment id i) for methods that have "
        "them (soft methods such as Gaussian mixtures); null for k-means, which assigns to the nearest "
        "centroid and has no probabilities.",
    )
    actions: Optional[list[str]] = Field(
        description="Recommended actions for this customer from the model's playbook; null when the model "
        "has no playbook.",
    )
    as_of: Optional[dt.date] = Field(
        description="Date the features were computed at (transactions form); null when features were given.",
    )
    value: Optional[CustomerValue] = Field(
        description="The customer's predicted value (expected purchases, P(alive), CLV) when the model has the "
        "value family: computed from the transactions with the model's stored parameters (the models need the "
        "purchase history: repeat purchase days, recency and age), or, in the features form, the value columns "
        "the features carry (as `segwise features` and `segwise assign` compute them); null when the model has "
        "no value family or the features lack one of them.",
    )
    model_version: str = Field(description="SHA-256 of the model file that made the assignment.")

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "customer_id": "C-1042", "segment_id": 1, "segment_name": "Loyal Regulars", "confidence": 0.62,
        "probabilities": None, "actions": None, "as_of": "2024-01-01",
        "value": {"expected_purchases_90d": 0.84, "expected_purchases_365d": 2.9, "p_alive": 0.81,
                  "clv_365d": 131.5},
        "model_version": "3f6c0a9d2b5e4f718a0c1d2e3f405162738495a6b7c8d9e0f1a2b3c4d5e6f708",
    }]})


class BatchAssignment(Assignment):
    value: Optional[CustomerValue] = Field(
        description="The customer's predicted value, as in /v1/assign's features form: the value columns the "
        "features carry (as `segwise features` and `segwise assign` compute them with the model's stored "
        "parameters; a batch takes features only); null when the model has no value family or the features "
        "lack one of them.",
    )


class BatchResponse(BaseModel):
    assignments: list[BatchAssignment] = Field(description="One assignment per customer, in request order.")
    model_version: str


class SegmentInfo(BaseModel):
    segment_id: int
    name: str
    description: str
    archetype: Optional[str] = Field(description="Marketing archetype the name came from, if any.")
    name_overridden: bool
    n_customers: int = Field(description="Training customers in the segment.")
    share_customers: float
    share_revenue: Optional[float]
    means: dict[str, Optional[float]] = Field(description="Mean of every profile feature in the segment.")
    medians: dict[str, Optional[float]]
    zscores: dict[str, Optional[float]] = Field(description="Segment mean against the population, in standard deviations.")
    traits: list[dict[str, Any]] = Field(description="Distinguishing traits, strongest first, with plain-words text.")
    categories: dict[str, dict[str, Optional[float]]] = Field(description="Shares of each level of categorical features.")


class SegmentsResponse(BaseModel):
    segments: list[SegmentInfo]
    value_column: Optional[str] = Field(description="Feature that orders segments by value.")
    model_version: str


class FeatureInfo(BaseModel):
    name: str
    family: Optional[str]
    unit: Optional[str]
    description: Optional[str]
    kind: str = Field(description="numeric or categorical")
    required: bool = Field(description="Whether /v1/assign needs it (it defines the segments).")
    minimum: Optional[float] = None
    maximum: Optional[float] = None


class ModelInfo(BaseModel):
    model_version: str = Field(description="SHA-256 of the model file.")
    file_sha256: str
    model_id: Optional[str]
    method: str
    n_segments: int
    as_of: Optional[str] = Field(description="Date the training features were computed at.")
    created_at: Optional[str]
    segwise_version: Optional[str]
    training_customers: Optional[int]
    features: list[FeatureInfo]
    has_probabilities: bool
    has_playbook: bool
    transactions_form: bool = Field(description="Whether /v1/assign accepts recent transactions for this model.")
    value_columns: list[str] = Field(
        description="The predicted-value columns /v1/assign returns (under `value`) for the transactions form; "
        "empty when the model has no value family.",
    )
    loaded_at: str


class Health(BaseModel):
    status: str = "ok"


class Readiness(BaseModel):
    status: str = "ready"
    model_version: str


class ReloadResponse(BaseModel):
    status: str = Field(description="'reloaded'.")
    previous_model_version: str
    model: ModelInfo
    workers_restarting: bool = Field(
        description="True when several workers serve: they are being replaced one by one and pick up the "
        "new model (send requests on; there is no downtime).",
    )


# --------------------------------------------------------------------------- requests

_UNIT_BOUNDS: dict[str, tuple[float | None, float | None]] = {
    "share 0-1": (0.0, 1.0),
    "ratio -1..1": (-1.0, 1.0),
    "days": (0.0, None),
    "orders": (0.0, None),
    "categories": (0.0, None),
    "bits": (0.0, None),
}


def _field_bounds(model: type[BaseModel]) -> dict[str, tuple[float | None, float | None]]:
    """``ge`` and ``le`` of every field of a response model."""
    bounds = {}
    for name, info in model.model_fields.items():
        low = next((m.ge for m in info.metadata if getattr(m, "ge", None) is not None), None)
        high = next((m.le for m in info.metadata if getattr(m, "le", None) is not None), None)
        bounds[name] = (low, high)
    return bounds


#: Bounds of the value columns: a request's features carry them, and the answer returns them under
#: ``value``, so they are accepted within the ranges `CustomerValue` declares.
_VALUE_BOUNDS = _field_bounds(CustomerValue)

#: The value columns an answer returns under ``value`` (`CustomerValue`'s fields).
VALUE_FIELDS = tuple(CustomerValue.model_fields)


def value_bounds(column: FeatureColumn | None) -> tuple[float, float]:
    """Smallest and largest accepted value of a numeric feature, from its unit (the value
    columns: from `CustomerValue`)."""
    low, high = -MAX_ABS_VALUE, MAX_ABS_VALUE
    if column is not None and column.family != "attributes":
        unit_low, unit_high = _UNIT_BOUNDS.get(column.unit, (None, None))
        if column.family == "value" and column.name in _VALUE_BOUNDS:
            unit_low, unit_high = _VALUE_BOUNDS[column.name]
        low = low if unit_low is None else unit_low
        high = high if unit_high is None else unit_high
    return low, high


def _number(low: float, high: float, description: str | None = None):
    return Annotated[float, Field(ge=low, le=high, allow_inf_nan=False, description=description)]


CustomerId = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH, description="Your id for the customer.")]
Text = Annotated[str, Field(max_length=MAX_TEXT_LENGTH)]


class AssignRequest(BaseModel):
    """A validated single-assignment request (features already checked against the model)."""

    customer_id: str
    features: Optional[dict[str, Any]] = None
    transactions: Optional[list[dict[str, Any]]] = None
    as_of: Optional[dt.date] = None


@dataclass
class RequestSchemas:
    """Validators and JSON schemas of the requests for one model.

    Attributes
    ----------
    input_columns : dict of str to str
        Columns ``/v1/assign`` needs, to ``"numeric"`` or ``"categorical"``.
    transaction_fields : dict of str to bool
        Optional transaction fields the model reads (category, channel, discount).
    components : dict
        JSON schemas (OpenAPI components) of Features, Transaction, AssignRequest,
        BatchCustomer and BatchRequest.
    value_columns : tuple of str
        The value columns (`VALUE_FIELDS`) among the model's feature columns: all of them
        when the model has the value family, else none.
    """

    input_columns: dict[str, str]
    transaction_fields: dict[str, bool]
    components: dict[str, Any]
    single: TypeAdapter
    batch: TypeAdapter
    max_batch_size: int
    #: The value columns requests' features may carry and answers return under ``value``
    #: (empty when the model has no value family).
    value_columns: tuple[str, ...] = ()

    @classmethod
    def for_model(cls, input_columns: dict[str, str], known_columns: dict[str, FeatureColumn | None], *,
                  uses_category: bool, uses_channel: bool, uses_discount: bool, max_batch_size: int,
                  max_transactions: int) -> "RequestSchemas":
        """Build the request schemas.

        Parameters
        ----------
        input_columns : dict
            Columns assignment needs (name to kind): required in ``features``.
        known_columns : dict
            Every feature column of the model (name to its documentation, if any):
            accepted in ``features``; the ones not needed are ignored.
        uses_category, uses_channel, uses_discount : bool
            Whether transactions must carry these fields.
        """
        fields: dict[str, Any] = {}
        for name, doc in known_columns.items():
            description = f"{doc.description} ({doc.unit})" if doc is not None else None
            kind = input_columns.get(name, doc.kind if doc is not None else "numeric")
            if kind == "categorical":
                value: Any = Optional[Annotated[str, Field(max_length=MAX_TEXT_LENGTH, description=description)]]
            else:
                low, high = value_bounds(doc)
                value = Optional[_number(low, high, description)]
            fields[name] = Required[value] if name in input_columns else NotRequired[value]
        features = TypedDict("Features", fields)  # type: ignore[misc]
        features.__pydantic_config__ = _STRICT  # type: ignore[attr-defined]

        amount = _number(-MAX_ABS_VALUE, MAX_ABS_VALUE, "Line amount; negative for a return or cancellation.")
        line: dict[str, Any] = {
            "order_id": NotRequired[Optional[Annotated[Text, Field(description="Order or invoice id (lines of one order share it).")]]],
            "ts": Required[Annotated[dt.datetime, Field(description="When the line was bought (ISO 8601).")]],
            "amount": Required[amount],
        }
        optional = {"category": (uses_category, Text), "channel": (uses_channel, Text), "discount": (uses_discount, bool)}
        for name, (needed, kind) in optional.items():
            line[name] = (Required if needed else NotRequired)[Optional[kind]]
        transaction = TypedDict("Transaction", line)  # type: ignore[misc]
        transaction.__pydantic_config__ = _STRICT  # type: ignore[attr-defined]

        single = TypedDict("AssignRequest", {  # type: ignore[misc]
            "customer_id": Required[CustomerId],
            "features": NotRequired[features],
            "transactions": NotRequired[Annotated[list[transaction], Field(min_length=1, max_length=max_transactions)]],
            "as_of": NotRequired[Annotated[dt.date, Field(description="Observation date: only lines before it count.")]],
        })
        single.__pydantic_config__ = _STRICT  # type: ignore[attr-defined]
        customer = TypedDict("BatchCustomer", {"customer_id": Required[CustomerId], "features": Required[features]})  # type: ignore[misc]
        customer.__pydantic_config__ = _STRICT  # type: ignore[attr-defined]
        batch = TypedDict("BatchRequest", {  # type: ignore[misc]
            "customers": Required[Annotated[list[customer], Field(min_length=1, max_length=max_batch_size)]],
        })
        batch.__pydantic_config__ = _STRICT  # type: ignore[attr-defined]

        single_adapter, batch_adapter = TypeAdapter(single), TypeAdapter(batch)
        components = _components(single_adapter, batch_adapter)
        value_columns = VALUE_FIELDS if all(
            known_columns.get(c) is not None and known_columns[c].family == "value" for c in VALUE_FIELDS) else ()
        return cls(
            input_columns=dict(input_columns),
            transaction_fields={"category": uses_category, "channel": uses_channel, "discount": uses_discount},
            components=components, single=single_adapter, batch=batch_adapter, max_batch_size=max_batch_size,
            value_columns=value_columns,
        )

    def parse_single(self, body: bytes) -> AssignRequest:
        """Validate a ``/v1/assign`` body; raises `InvalidRequest`."""
        try:
            data = self.single.validate_json(body)
        except ValidationError as exc:
            raise InvalidRequest(_issues(exc)) from None
        has_features, has_lines = "features" in data, "transactions" in data
        if has_features and has_lines:
            raise InvalidRequest([issue((), "give either features or transactions (with as_of), not both")])
        if not has_features and not has_lines:
            raise InvalidRequest([issue(("features",), "Field required: give the customer's features, or "
                                        "their transactions with as_of", "missing")])
        if has_lines and "as_of" not in data:
            raise InvalidRequest([issue(("as_of",), "Field required: as_of says at which date the "
                                        "transactions are summarised", "missing")])
        if has_features and "as_of" in data:
            raise InvalidRequest([issue(("as_of",), "as_of goes with transactions only; features are "
                                        "already computed at a date", "extra_forbidden")])
        return AssignRequest(customer_id=data["customer_id"], features=data.get("features"),
                             transactions=data.get("transactions"), as_of=data.get("as_of"))

    def parse_batch(self, body: bytes) -> list[dict[str, Any]]:
        """Validate a ``/v1/assign/batch`` body; returns its customers; raises `InvalidRequest`."""
        try:
            return self.batch.validate_json(body)["customers"]
        except ValidationError as exc:
            raise InvalidRequest(_issues(exc)) from None


def _components(single: TypeAdapter, batch: TypeAdapter) -> dict[str, Any]:
    """JSON schemas of the request types, as OpenAPI components."""
    template = "#/components/schemas/{model}"
    components: dict[str, Any] = {}
    for adapter in (single, batch):
        schema = adapter.json_schema(ref_template=template)
        components.update(schema.pop("$defs", {}))
        components[schema["title"]] = schema
    # Exactly one form: features, or transactions with as_of (as parse_single checks).
    components["AssignRequest"]["oneOf"] = [
        {"required": ["features"], "not": {"anyOf": [{"required": ["transactions"]}, {"required": ["as_of"]}]}},
        {"required": ["transactions", "as_of"], "not": {"required": ["features"]}},
    ]
    return components
