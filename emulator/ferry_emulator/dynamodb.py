"""DynamoDB's size limits, refused as DynamoDB refuses them. TEST INFRASTRUCTURE.

moto 5.2.5 serves the lane table, but sizes items its own way: numbers by their text, no list or
map overhead, a 405,000 limit instead of 409,600, and an UpdateItem measured as the old item
plus the new value of each attribute it sets (so an update whose *result* fits is refused when
the attribute it replaces was large). It accepts transactions of any size, and limits
TransactGetItems to 25 actions (DynamoDB has allowed 100 since 2022). This module checks every
write before moto sees it, on the item DynamoDB would store, and :func:`install_moto_fixes`
removes moto's own check so that only these refusals remain.

Item size (Developer Guide, "DynamoDB item sizes and formats",
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html):
"the sum of the lengths of its attribute names and values": names and strings in UTF-8 bytes;
binary in raw bytes; a Boolean or null 1 byte; a List or Map 3 bytes plus its elements, "each
List or Map element also requires 1 byte of overhead" (a Map element: its name and value).
Numbers: "approximately ... (1 byte per two significant digits) + (1 byte)"; measured against
AWS, a number costs ``1 + ceil(integer digits / 2) + ceil(fraction digits / 2)``, plus 1 when
negative, leading and trailing zeros trimmed (paritysuite/dynamodb-conformance,
tests/tier3/limits/numberByteSize.test.ts, eu-west-2, 2026-08-18). Taken here as the larger of
that and a base-100 count of the digit pairs around the decimal point (strict where the two
readings differ). Sets: the guide gives no rule; strict choice, sized as a List of their
members.

Limits and answers (HTTP 400, awsJson 1.0):

* An item over 409,600 bytes (DynamoDB's "400 KB", measured to the byte: an item of exactly
  409,600 bytes is stored, one byte more is refused, on every write surface; conformance suite,
  tests/tier3/limits/itemSizeBySurface.test.ts): PutItem, BatchWriteItem and a transaction's Put
  answer ``ValidationException`` "Item size has exceeded the maximum allowed size"; UpdateItem
  "Item size to update has exceeded the maximum allowed size"; a transaction's Update cancels it,
  ``TransactionCanceledException`` with the reason ``ValidationError`` and that message (API
  reference, TransactionCanceledException, "Cancellation reason codes": "Item size to update has
  exceeded the maximum allowed size"; the split between a Put's up-front refusal and an Update's
  cancellation is the conformance suite's capture). One value of an UpdateItem over the limit:
  "ExpressionAttributeValues contains invalid value: Item size has exceeded the maximum allowed
  size for key :v" (AWS's wording, as reported by its users).
* UpdateItem is measured on the item it leaves (computed with moto's own update machinery on a
  copy), not the old item plus the update. Besides, in most regions (us-east-1 among them) a
  standalone UpdateItem is also refused when what its statement writes passes 409,600: 3 bytes,
  plus per SET or ADD 19 bytes, its target and its operands, per REMOVE or DELETE 1 byte and its
  target; a value operand costs its size, a path operand 1 + 14 and its element per element,
  ``+``/``-`` 34/37, ``if_not_exists`` 39, ``list_append`` 37 (conformance suite, same file,
  measured 2026-08-19 to 2026-10-09; ten regions measure the finished item only). Undocumented,
  and applied here as measured (strict).
* TransactWriteItems and TransactGetItems: at most 100 actions (API reference: "groups up to 100
  action requests", TransactItems length 1-100), else ``ValidationException`` "1 validation error
  detected: Value at 'TransactItems' failed to satisfy constraint: Member must have length less
  than or equal to 100" (AWS's current wording, per the conformance suite's capture). "The
  aggregate size of the items in the transaction cannot exceed 4 MB" (API reference,
  TransactWriteItems, TransactGetItems): counted as 4,000,000 bytes, the smaller reading of "MB"
  (strict: no source says which); the items are a Put's new item, an Update's larger of the
  item before and after, a Delete's and a ConditionCheck's item as stored, a Get's item as
  stored (whole, whatever its projection). The error is not documented: strict choice,
  ``ValidationException`` naming the size, before any action is applied.

Not checked: PartiQL (ExecuteStatement and its batch forms: Ferry does not use them), local
secondary index sizes, key sizes (moto's own checks stand).
"""

from __future__ import annotations

import base64
import copy
import math
from decimal import Decimal, InvalidOperation
from typing import Any, Callable

from .wire import ApiError, AwsRequest

MAX_ITEM_BYTES = 409_600
MAX_TRANSACTION_ACTIONS = 100
MAX_TRANSACTION_BYTES = 4_000_000

PUT_TOO_LARGE = "Item size has exceeded the maximum allowed size"
UPDATE_TOO_LARGE = "Item size to update has exceeded the maximum allowed size"

#: What an UpdateItem's statement costs besides what it writes (see the module docstring).
UPDATE_BASE_COST = 3
WRITE_ACTION_COST = 19  # SET, ADD
DROP_ACTION_COST = 1  # REMOVE, DELETE
PATH_OPERAND_COST, PATH_ELEMENT_COST, TARGET_ELEMENT_COST = 1, 14, 4
OPERATOR_COST = {"+": 34, "-": 37}
FUNCTION_COST = {"if_not_exists": 39, "list_append": 37}


def install_moto_fixes() -> None:
    """Takes moto's own item-size check out (it refuses items DynamoDB stores: see the module
    docstring), lets TransactGetItems carry 100 actions, and makes two of moto's costs grow
    with what a request touches instead of with the table (:func:`_query_one_partition`,
    :func:`_transactions_back_up_their_items`). Idempotent."""
    from moto.dynamodb import responses  # noqa: PLC0415 (moto is heavy)
    from moto.dynamodb.models import dynamo_type  # noqa: PLC0415

    dynamo_type.LimitedSizeDict.__setitem__ = dict.__setitem__  # type: ignore[assignment]
    responses.TRANSACTION_MAX_ITEMS = MAX_TRANSACTION_ACTIONS
    _query_one_partition()
    _transactions_back_up_their_items()


def _query_one_partition() -> None:
    """moto 5.2.5's Query on a table (not an index) reads every item of the table to find the
    partition's: 16 ms with 1,500 items, 300 ms with 30,000, where DynamoDB reads the partition
    only. The same Query, handed the partition's items alone (the answer is the same: moto
    keeps a table's items by partition key). Requests reach moto one at a time (app.py)."""
    from moto.dynamodb.models.table import Table  # noqa: PLC0415

    original = Table.query
    if getattr(original, "_ferry_fixed", False):
        return

    def query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("index_name") or hash_key is None or not self.has_range_key:
            return original(self, hash_key, *args, **kwargs)
        partition = list(self.items[hash_key].values()) if hash_key in self.items else []
        self.all_items = lambda: iter(partition)  # shadows the method for this call
        try:
            return original(self, hash_key, *args, **kwargs)
        finally:
            del self.all_items

    query._ferry_fixed = True  # type: ignore[attr-defined]
    Table.query = query  # type: ignore[method-assign]


class _SameTables:
    """`copy` for moto's transaction code: its `copy.deepcopy(table)` (a backup of every table
    a transaction names, once per action) returns the table itself; anything else is copied."""

    @staticmethod
    def deepcopy(value: Any, memo: Any = None) -> Any:
        from moto.dynamodb.models.table import Table  # noqa: PLC0415

        return value if isinstance(value, Table) else copy.deepcopy(value, memo)


def _transactions_back_up_their_items() -> None:
    """moto 5.2.5 backs a TransactWriteItems up by copying every table it names, once per
    action (a 99-action transaction on a table of 8,000 items copies 792,000 items); DynamoDB
    applies a transaction whole or not at all. The same rollback from a copy of just the items
    the actions name: taken before, put back if moto cancels the transaction."""
    from moto.dynamodb import models  # noqa: PLC0415

    backend = models.DynamoDBBackend
    original = backend.transact_write_items
    if getattr(original, "_ferry_fixed", False):
        return

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        backups = []
        for action in transact_items:
            (kind, op), = action.items()
            table = self.tables.get(op.get("TableName"))
            if table is None:
                continue
            key = op.get("Key")
            if kind == "Put":
                item = op.get("Item") or {}
                names = [table.hash_key_attr] + ([table.range_key_attr]
                                                 if table.range_key_attr else [])
                key = {name: item[name] for name in names if name in item}
            try:
                hash_value, range_value = self.get_keys_value(table, key or {})
            except Exception:  # noqa: BLE001 (moto answers the malformed key itself)
                continue
            stored = table.get_item(hash_value, range_value)
            backups.append((table, hash_value, range_value, copy.deepcopy(stored)))
        models.copy = _SameTables  # type: ignore[assignment]
        try:
            original(self, transact_items)
        except Exception:
            for table, hash_value, range_value in {(t, h, r) for t, h, r, _ in backups}:
                _drop(table, hash_value, range_value)
            for table, hash_value, range_value, stored in backups:
                if stored is not None:
                    _restore(table, hash_value, range_value, stored)
            raise
        finally:
            models.copy = copy  # type: ignore[assignment]

    transact_write_items._ferry_fixed = True  # type: ignore[attr-defined]
    backend.transact_write_items = transact_write_items  # type: ignore[method-assign]


def _drop(table: Any, hash_value: Any, range_value: Any) -> None:
    if range_value is not None:
        table.items.get(hash_value, {}).pop(range_value, None)
    else:
        table.items.pop(hash_value, None)


def _restore(table: Any, hash_value: Any, range_value: Any, stored: Any) -> None:
    if range_value is not None:
        table.items[hash_value][range_value] = stored
    else:
        table.items[hash_value] = stored


# ---------------------------------------------------------------------------------- sizes


def _utf8(text: str) -> int:
    return len(text.encode("utf-8"))


def _binary(value: Any) -> int:
    """Raw bytes: the wire carries base64, moto's nested values hold bytes."""
    return len(value) if isinstance(value, (bytes, bytearray)) else len(base64.b64decode(value))


def number_size(text: str) -> int:
    """The bytes DynamoDB stores a number in (see the module docstring)."""
    try:
        number = Decimal(text)
    except InvalidOperation:
        return _utf8(text)  # not a number: moto refuses it; size it as text meanwhile
    integer, _, fraction = format(abs(number), "f").partition(".")
    integer, fraction = integer.lstrip("0"), fraction.rstrip("0")
    if not integer and not fraction:
        return 1
    sign = 1 if number < 0 else 0
    # As measured: the significant digits on each side of the point, in pairs.
    whole = integer.rstrip("0") if not fraction else integer
    part = fraction.lstrip("0") if not integer else fraction
    measured = 1 + math.ceil(len(whole) / 2) + math.ceil(len(part) / 2)
    # Base 100: digit pairs aligned on the point, zero pairs at either end dropped.
    digits = integer.rjust(len(integer) + len(integer) % 2, "0") + \
        fraction.ljust(len(fraction) + len(fraction) % 2, "0")
    pairs = [digits[i:i + 2] for i in range(0, len(digits), 2)]
    while pairs and pairs[0] == "00":
        pairs.pop(0)
    while pairs and pairs[-1] == "00":
        pairs.pop()
    return max(measured, 1 + len(pairs)) + sign


def value_size(value: dict[str, Any]) -> int:
    """An AttributeValue's size, its name not included."""
    (kind, content), = value.items()
    if kind == "S":
        return _utf8(content)
    if kind == "N":
        return number_size(str(content))
    if kind == "B":
        return _binary(content)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(1 + value_size(v) for v in content)
    if kind == "M":
        return 3 + sum(1 + _utf8(k) + value_size(v) for k, v in content.items())
    member = {"SS": "S", "NS": "N", "BS": "B"}[kind]
    return 3 + sum(1 + value_size({member: v}) for v in content)


def item_size(item: dict[str, Any]) -> int:
    """An item's size: its attribute names and values."""
    return sum(_utf8(name) + value_size(value) for name, value in item.items())


# ---------------------------------------------------------------------------------- errors


def _validation(message: str) -> ApiError:
    return ApiError("ValidationException", message, message_key="message")


def _too_many(count: int) -> ApiError:
    return _validation("1 validation error detected: Value at 'TransactItems' failed to satisfy "
                       f"constraint: Member must have length less than or equal to "
                       f"{MAX_TRANSACTION_ACTIONS}")


def _transaction_too_large(size: int) -> ApiError:
    return _validation(f"The aggregate size of the items in the transaction ({size} bytes) "
                       f"exceeds 4 MB ({MAX_TRANSACTION_BYTES} bytes)")


def _cancelled(reasons: list[str | None], message: str) -> ApiError:
    """TransactionCanceledException: one reason per action, in order (API reference)."""
    codes = [code or "None" for code in reasons]
    return ApiError(
        "TransactionCanceledException",
        f"Transaction cancelled, please refer cancellation reasons for specific reasons "
        f"[{', '.join(codes)}]",
        extra={"CancellationReasons": [
            {"Code": code, "Message": message} if code != "None" else {"Code": "None"}
            for code in codes]})


# ---------------------------------------------------------------------------------- moto's items


class _Table:
    """One table of moto's DynamoDB, read for the sizes of stored and updated items."""

    def __init__(self, req: AwsRequest, name: str) -> None:
        from moto.dynamodb.models import dynamodb_backends  # noqa: PLC0415

        self.backend = dynamodb_backends[req.account][req.region]
        self.table = self.backend.get_table(name)

    def stored(self, key: dict[str, Any]) -> dict[str, Any] | None:
        found = self._item(key)
        return found.to_json()["Attributes"] if found is not None else None

    def _item(self, key: dict[str, Any]) -> Any:
        hash_value, range_value = self.backend.get_keys_value(self.table, key)
        return self.table.get_item(hash_value, range_value)

    def updated(self, key: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        """The item an update leaves, as moto computes it (UpdateItem), on a copy."""
        from moto.dynamodb.models.dynamo_type import Item  # noqa: PLC0415
        from moto.dynamodb.parsing.executors import UpdateExpressionExecutor  # noqa: PLC0415
        from moto.dynamodb.parsing.expressions import UpdateExpressionParser  # noqa: PLC0415
        from moto.dynamodb.parsing.validators import UpdateExpressionValidator  # noqa: PLC0415

        current = self._item(key)
        if current is not None:
            item = copy.deepcopy(current)
        else:
            hash_value, range_value = self.backend.get_keys_value(self.table, key)
            item = Item(hash_value, range_value, attrs=dict(key))
        names = params.get("ExpressionAttributeNames") or {}
        if params.get("UpdateExpression"):
            ast = UpdateExpressionParser.make(params["UpdateExpression"])
            validated = UpdateExpressionValidator(
                ast, expression_attribute_names=names,
                expression_attribute_values=params.get("ExpressionAttributeValues") or {},
                item=item, table=self.table).validate()
            validated.normalize()
            UpdateExpressionExecutor(validated, item, names).execute()
        elif params.get("AttributeUpdates"):
            item.update_with_attribute_updates(params["AttributeUpdates"])
        return item.to_json()["Attributes"]


# ---------------------------------------------------------------------------------- statements


def _elements(path: Any, names: dict[str, str]) -> list[int]:
    """The bytes of each element of a document path (`a.#b[3]`: a, b's name, 3's digits)."""
    sizes = []
    for node in path.children:
        if node.type == "ExpressionAttribute":
            sizes.append(_utf8(node.get_attribute_name()))
        elif node.type == "ExpressionAttributeName":
            sizes.append(_utf8(names.get(node.get_attribute_name_placeholder(), "")))
        elif node.type == "ExpressionSelector":
            sizes.append(len(str(node.get_index())))
    return sizes


def _target(path: Any, names: dict[str, str]) -> int:
    first, *rest = _elements(path, names) or [0]
    return first + sum(TARGET_ELEMENT_COST + e for e in rest)


def _operand(node: Any, names: dict[str, str], values: dict[str, Any]) -> int:
    kind = node.type
    if kind == "ExpressionAttributeValue":
        return value_size(values.get(node.get_value_name(), {"NULL": True}))
    if kind == "UpdateExpressionPath":
        return PATH_OPERAND_COST + sum(PATH_ELEMENT_COST + e for e in _elements(node, names))
    if kind == "UpdateExpressionFunction":
        return FUNCTION_COST.get(node.get_function_name(), 0) + sum(
            _operand(a, names, values) for a in node.children[1:])
    if kind in ("UpdateExpressionValue", "UpdateExpressionGroupedValue"):
        return sum(OPERATOR_COST.get(c.get_operator(), 0) if c.type == "ExpressionValueOperator"
                   else _operand(c, names, values) for c in node.children)
    return 0


def statement_size(params: dict[str, Any]) -> int:
    """What an UpdateItem's statement writes, as DynamoDB measures it (module docstring)."""
    from moto.dynamodb.parsing import ast_nodes as ast  # noqa: PLC0415
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser  # noqa: PLC0415

    names = params.get("ExpressionAttributeNames") or {}
    values = params.get("ExpressionAttributeValues") or {}
    tree = UpdateExpressionParser.make(params["UpdateExpression"])
    total = UPDATE_BASE_COST
    for action in tree.find_clauses([ast.UpdateExpressionSetAction, ast.UpdateExpressionAddAction,
                                     ast.UpdateExpressionRemoveAction,
                                     ast.UpdateExpressionDeleteAction]):
        path, *value = action.children
        if action.type in ("UpdateExpressionRemoveAction", "UpdateExpressionDeleteAction"):
            total += DROP_ACTION_COST + _target(path, names)
        else:
            total += WRITE_ACTION_COST + _target(path, names) + sum(
                _operand(v, names, values) for v in value)
    return total


# ---------------------------------------------------------------------------------- the checks


def _put_item(req: AwsRequest) -> None:
    if item_size(req.params.get("Item") or {}) > MAX_ITEM_BYTES:
        raise _validation(PUT_TOO_LARGE)


def _batch_write_item(req: AwsRequest) -> None:
    for requests in (req.params.get("RequestItems") or {}).values():
        for request in requests:
            if item_size((request.get("PutRequest") or {}).get("Item") or {}) > MAX_ITEM_BYTES:
                raise _validation(PUT_TOO_LARGE)


def _update_item(req: AwsRequest) -> None:
    p = req.params
    for name, value in (p.get("ExpressionAttributeValues") or {}).items():
        if value_size(value) > MAX_ITEM_BYTES:
            raise _validation("ExpressionAttributeValues contains invalid value: "
                              f"{PUT_TOO_LARGE} for key {name}")
    after = _Table(req, p["TableName"]).updated(p["Key"], p)
    if item_size(after) > MAX_ITEM_BYTES or (
            p.get("UpdateExpression") and statement_size(p) > MAX_ITEM_BYTES):
        raise _validation(UPDATE_TOO_LARGE)


def _transact_write_items(req: AwsRequest) -> None:
    actions = req.params.get("TransactItems") or []
    if len(actions) > MAX_TRANSACTION_ACTIONS:
        raise _too_many(len(actions))
    for action in actions:
        if "Put" in action and item_size(action["Put"].get("Item") or {}) > MAX_ITEM_BYTES:
            raise _validation(PUT_TOO_LARGE)
    sizes, oversized = [], []
    for action in actions:
        size, after = _action_sizes(req, action)
        sizes.append(size)
        oversized.append("ValidationError" if after > MAX_ITEM_BYTES else None)
    if sum(sizes) > MAX_TRANSACTION_BYTES:
        raise _transaction_too_large(sum(sizes))
    if any(oversized):
        raise _cancelled(oversized, UPDATE_TOO_LARGE)


def _action_sizes(req: AwsRequest, action: dict[str, Any]) -> tuple[int, int]:
    """(what the action weighs in the transaction, the size of the item an Update leaves)."""
    (kind, op), = action.items()
    if kind == "Put":
        return item_size(op.get("Item") or {}), 0
    table = _Table(req, op["TableName"])
    before = item_size(table.stored(op["Key"]) or {})
    if kind != "Update":
        return before, 0
    after = item_size(table.updated(op["Key"], op))
    return max(before, after), after


def _transact_get_items(req: AwsRequest) -> None:
    actions = req.params.get("TransactItems") or []
    if len(actions) > MAX_TRANSACTION_ACTIONS:
        raise _too_many(len(actions))
    total = 0
    for action in actions:
        get = action.get("Get") or {}
        total += item_size(_Table(req, get["TableName"]).stored(get["Key"]) or {})
    if total > MAX_TRANSACTION_BYTES:
        raise _transaction_too_large(total)


CHECKS: dict[str, Callable[[AwsRequest], None]] = {
    "PutItem": _put_item,
    "BatchWriteItem": _batch_write_item,
    "UpdateItem": _update_item,
    "TransactWriteItems": _transact_write_items,
    "TransactGetItems": _transact_get_items,
}


def check(req: AwsRequest) -> None:
    """Refuses (ApiError) a DynamoDB request over a size limit; anything else goes on to moto.

    A request these checks cannot read (an unknown table, a malformed key, item or expression:
    moto's own errors, or a missing or mistyped field) is left to moto, which answers it with its
    own error; anything else is a bug here and goes up."""
    from moto.core.exceptions import JsonRESTError, ServiceException  # noqa: PLC0415

    run = CHECKS.get(req.operation or "")
    if run is None:
        return
    try:
        run(req)
    except (JsonRESTError, ServiceException, KeyError, TypeError, ValueError, AttributeError):
        return
