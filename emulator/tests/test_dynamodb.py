"""DynamoDB's size limits (ferry_emulator.dynamodb): items sized by DynamoDB's rules and refused
past 409,600 bytes on every write Ferry uses, an UpdateItem measured on the item it leaves, and
transactions of at most 100 actions and 4 MB (counted as 4,000,000 bytes), with DynamoDB's
errors. Where moto 5.2.5 alone answers otherwise, the test says so."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from ferry_emulator.dynamodb import item_size, number_size, statement_size, value_size

TABLE = "lanes"
LIMIT = 409_600
PUT_TOO_LARGE = "Item size has exceeded the maximum allowed size"
UPDATE_TOO_LARGE = "Item size to update has exceeded the maximum allowed size"
#: A key long enough that UpdateItem's statement rule never binds (see test_update_statement).
LONG = "k" * 40


@pytest.fixture()
def ddb(aws: Any) -> Any:
    client = aws("dynamodb")
    client.create_table(TableName=TABLE, BillingMode="PAY_PER_REQUEST",
                        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
    return client


def key(name: str) -> dict[str, Any]:
    return {"pk": {"S": name}}


def sized(name: str, size: int, attribute: str = "p") -> dict[str, Any]:
    """An item of exactly `size` bytes: its key and one string attribute (all ASCII)."""
    padding = size - len("pk") - len(name) - len(attribute)
    item = {**key(name), attribute: {"S": "x" * padding}}
    assert item_size(item) == size
    return item


def refused(call: Any, code: str, message: str | None = None) -> dict[str, Any]:
    with pytest.raises(ClientError) as excinfo:
        call()
    response = excinfo.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert response["Error"]["Code"] == code
    if message is not None:
        assert response["Error"]["Message"] == message
    return response


def stored(ddb: Any, name: str) -> dict[str, Any] | None:
    return ddb.get_item(TableName=TABLE, Key=key(name), ConsistentRead=True).get("Item")


# ------------------------------------------------------------------------------ sizes


def test_sizes_follow_the_developer_guide():
    # Strings and names: UTF-8 bytes.
    assert item_size({"name": {"S": "é"}}) == 4 + 2
    # Binary: raw bytes, not the base64 on the wire ("AAEC" is 3 bytes).
    assert value_size({"B": "AAEC"}) == 3
    assert value_size({"BOOL": False}) == value_size({"NULL": True}) == 1
    # Lists and maps: 3 bytes, plus 1 per element (a map element: its name and value).
    assert value_size({"L": []}) == value_size({"M": {}}) == 3
    assert value_size({"L": [{"S": "ab"}, {"S": "c"}]}) == 3 + (1 + 2) + (1 + 1)
    assert value_size({"M": {"k": {"S": "ab"}}}) == 3 + 1 + 1 + 2
    # Sets: no rule in the guide; sized as a list of their members (strict).
    assert value_size({"SS": ["ab", "c"]}) == 3 + (1 + 2) + (1 + 1)


@pytest.mark.parametrize(("literal", "size"), [
    # Measured against AWS (conformance suite): 1 + ceil(integer digits / 2) + ceil(fraction
    # digits / 2), + 1 when negative, zeros trimmed; not the text's length.
    ("1", 2), ("123456", 4), ("3.14159", 5), ("1E125", 2), ("0042.1200", 3), ("-1", 3),
    ("0", 1), ("0.05", 2),
    # Where the two readings differ, the larger (base 100: 01|00|50).
    ("10050", 4),
])
def test_numbers_are_sized_by_their_significant_digits(literal, size):
    assert number_size(literal) == size


# ------------------------------------------------------------------------------ items


def test_an_item_of_409600_bytes_is_stored_and_one_byte_more_refused(ddb):
    # moto alone refuses past 405,000 of its own measure: it would refuse the first.
    ddb.put_item(TableName=TABLE, Item=sized("at", LIMIT))
    assert item_size(stored(ddb, "at")) == LIMIT
    refused(lambda: ddb.put_item(TableName=TABLE, Item=sized("over", LIMIT + 1)),
            "ValidationException", PUT_TOO_LARGE)
    assert stored(ddb, "over") is None


def test_lists_and_utf8_are_counted_as_dynamodb_counts_them(ddb):
    # 100,000 one-byte strings in a list: 3 + 100,000 × 2 bytes by DynamoDB's rules (moto alone
    # counts 100,000). A list just over the limit is refused...
    base = item_size({**key("list"), "l": {"L": []}})
    count = (LIMIT - base) // 2
    fits = {**key("list"), "l": {"L": [{"S": "a"}] * count}}
    assert item_size(fits) <= LIMIT < item_size(fits) + 2
    ddb.put_item(TableName=TABLE, Item=fits)
    over = {**key("list2"), "l": {"L": [{"S": "a"}] * (count + 1)}}
    refused(lambda: ddb.put_item(TableName=TABLE, Item=over), "ValidationException",
            PUT_TOO_LARGE)
    # ...and so is a string of fewer characters than the limit but more bytes.
    heavy = {**key("e"), "p": {"S": "é" * (LIMIT // 2)}}
    assert len(heavy["p"]["S"]) < LIMIT < item_size(heavy)
    refused(lambda: ddb.put_item(TableName=TABLE, Item=heavy), "ValidationException",
            PUT_TOO_LARGE)


def test_batch_write_refuses_an_item_over_the_limit(ddb):
    requests = [{"PutRequest": {"Item": sized("b1", 1000)}},
                {"PutRequest": {"Item": sized("b2", LIMIT + 1)}}]
    refused(lambda: ddb.batch_write_item(RequestItems={TABLE: requests}), "ValidationException",
            PUT_TOO_LARGE)
    assert stored(ddb, "b1") is None
    ddb.batch_write_item(RequestItems={TABLE: [{"PutRequest": {"Item": sized("b3", LIMIT)}}]})
    assert item_size(stored(ddb, "b3")) == LIMIT


# ------------------------------------------------------------------------------ UpdateItem


def update(ddb: Any, name: str, expression: str, values: dict[str, Any] | None = None) -> Any:
    args: dict[str, Any] = {"TableName": TABLE, "Key": key(name), "UpdateExpression": expression}
    if values:
        args["ExpressionAttributeValues"] = values
    return ddb.update_item(**args)


def test_an_update_is_measured_on_the_item_it_leaves(ddb):
    # 300 KB replaced by 300 KB: moto alone counts both and refuses; DynamoDB stores it.
    ddb.put_item(TableName=TABLE, Item={**key(LONG), "spec": {"S": "a" * 300_000}})
    update(ddb, LONG, "SET spec = :v", {":v": {"S": "b" * 300_000}})
    assert stored(ddb, LONG)["spec"]["S"] == "b" * 300_000
    # A large attribute set while another is removed: the result fits.
    update(ddb, LONG, "SET extra = :v REMOVE spec", {":v": {"S": "c" * 300_000}})
    assert "spec" not in stored(ddb, LONG)
    assert len(stored(ddb, LONG)["extra"]["S"]) == 300_000


def test_an_update_leaving_more_than_409600_bytes_is_refused_and_changes_nothing(ddb):
    ddb.put_item(TableName=TABLE, Item={**key(LONG), "a": {"S": "a" * 200_000}})
    room = LIMIT - item_size(stored(ddb, LONG)) - len("b")
    update(ddb, LONG, "SET b = :v", {":v": {"S": "b" * room}})
    assert item_size(stored(ddb, LONG)) == LIMIT
    before = stored(ddb, LONG)
    refused(lambda: update(ddb, LONG, "SET b = :v", {":v": {"S": "b" * (room + 1)}}),
            "ValidationException", UPDATE_TOO_LARGE)
    assert stored(ddb, LONG) == before
    # A new item made too large by an update alone.
    refused(lambda: update(ddb, "new" + LONG, "SET b = :v", {":v": {"S": "b" * LIMIT}}),
            "ValidationException")
    assert stored(ddb, "new" + LONG) is None


def test_one_update_value_over_the_limit_is_named(ddb):
    refused(lambda: update(ddb, LONG, "SET b = :big", {":big": {"S": "b" * (LIMIT + 1)}}),
            "ValidationException", "ExpressionAttributeValues contains invalid value: "
            f"{PUT_TOO_LARGE} for key :big")


def test_update_statement_rule_at_a_short_key(ddb):
    # Measured against AWS (us-east-1 among 22 regions): UpdateItem is also refused when what
    # its statement writes passes 409,600 (3 + 19 per SET + the target + the value), which at a
    # one-byte key puts the ceiling 19 bytes under the limit.
    ceiling = LIMIT - 19
    for name, size, ok in (("K", ceiling, True), ("L", ceiling + 1, False)):
        padding = size - item_size(key(name)) - len("b")
        values = {":pad": {"S": "x" * padding}}
        assert statement_size({"UpdateExpression": "SET b = :pad",
                               "ExpressionAttributeValues": values}) == (
            3 + 19 + size - item_size(key(name)))
        if ok:
            update(ddb, name, "SET b = :pad", values)
            assert item_size(stored(ddb, name)) == ceiling
        else:
            refused(lambda: update(ddb, name, "SET b = :pad", values), "ValidationException",
                    UPDATE_TOO_LARGE)


def test_statement_costs_per_clause():
    values = {":v": {"S": "abc"}, ":n": {"N": "1"}}
    cost = lambda e, names=None: statement_size(  # noqa: E731
        {"UpdateExpression": e, "ExpressionAttributeValues": values,
         "ExpressionAttributeNames": names or {}})
    assert cost("SET b = :v") == 3 + 19 + 1 + 3
    assert cost("SET b = :v, c = :v") - cost("SET b = :v") == 19 + 1 + 3
    assert cost("SET b = :v REMOVE r") - cost("SET b = :v") == 1 + 1
    assert cost("SET #long = :v", {"#long": "b"}) == cost("SET b = :v")
    assert cost("SET c = m.z") == 3 + 19 + 1 + (1 + 14 + 1 + 14 + 1)
    assert cost("SET c = if_not_exists(c, :n)") == 3 + 19 + 1 + 39 + (1 + 14 + 1) + 2
    assert cost("SET c = c + :n") == 3 + 19 + 1 + 34 + (1 + 14 + 1) + 2
    assert cost("SET l[10] = :v") == 3 + 19 + (1 + 4 + 2) + 3


# ------------------------------------------------------------------------------ transactions


def put(item: dict[str, Any]) -> dict[str, Any]:
    return {"Put": {"TableName": TABLE, "Item": item}}


def test_at_most_100_actions_per_transaction(ddb):
    ddb.transact_write_items(TransactItems=[put(sized(f"t{i}", 100)) for i in range(100)])
    response = refused(
        lambda: ddb.transact_write_items(
            TransactItems=[put(sized(f"u{i}", 100)) for i in range(101)]),
        "ValidationException")
    assert response["Error"]["Message"].endswith(
        "at 'TransactItems' failed to satisfy constraint: Member must have length less than or "
        "equal to 100")
    assert stored(ddb, "u0") is None
    # TransactGetItems: moto alone refuses more than 25.
    gets = [{"Get": {"TableName": TABLE, "Key": key(f"t{i}")}} for i in range(100)]
    assert len(ddb.transact_get_items(TransactItems=gets)["Responses"]) == 100
    refused(lambda: ddb.transact_get_items(
        TransactItems=gets + [{"Get": {"TableName": TABLE, "Key": key("t0x")}}]),
        "ValidationException")


def test_a_put_over_the_limit_is_refused_before_the_transaction(ddb):
    refused(lambda: ddb.transact_write_items(
        TransactItems=[put(sized("ok", 100)), put(sized("big", LIMIT + 1))]),
        "ValidationException", PUT_TOO_LARGE)
    assert stored(ddb, "ok") is None
    ddb.transact_write_items(TransactItems=[put(sized("exact", LIMIT))])
    assert item_size(stored(ddb, "exact")) == LIMIT


def test_an_update_over_the_limit_cancels_the_transaction(ddb):
    ddb.put_item(TableName=TABLE, Item={**key(LONG), "a": {"S": "a" * 300_000}})
    update_action = {"Update": {"TableName": TABLE, "Key": key(LONG),
                                "UpdateExpression": "SET b = :v",
                                "ExpressionAttributeValues": {":v": {"S": "b" * 110_000}}}}
    response = refused(lambda: ddb.transact_write_items(
        TransactItems=[put(sized("first", 100)), update_action]),
        "TransactionCanceledException")
    assert response["CancellationReasons"] == [
        {"Code": "None"}, {"Code": "ValidationError", "Message": UPDATE_TOO_LARGE}]
    assert stored(ddb, "first") is None
    assert "b" not in stored(ddb, LONG)


def test_the_aggregate_of_a_transaction_is_at_most_4000000_bytes(ddb):
    # Ten puts of 400,000 bytes: exactly 4,000,000, accepted (moto alone accepts any size).
    ddb.transact_write_items(TransactItems=[put(sized(f"a{i}", 400_000)) for i in range(10)])
    # One byte more, refused before anything is written.
    items = [put(sized(f"b{i}", 400_000)) for i in range(9)] + [put(sized("b9", 400_001))]
    response = refused(lambda: ddb.transact_write_items(TransactItems=items),
                       "ValidationException")
    assert "4000001 bytes" in response["Error"]["Message"]
    assert stored(ddb, "b0") is None


def test_stored_items_count_for_checks_deletes_and_updates(ddb):
    for i in range(4):
        ddb.put_item(TableName=TABLE, Item=sized(f"s{i}", 400_000))
    # A ConditionCheck and a Delete weigh the item as stored; an Update the larger of before
    # and after (here before: it removes the big attribute). 4 × 400,000 + 6 puts.
    actions = [
        {"ConditionCheck": {"TableName": TABLE, "Key": key("s0"),
                            "ConditionExpression": "attribute_exists(pk)"}},
        {"Delete": {"TableName": TABLE, "Key": key("s1")}},
        {"Update": {"TableName": TABLE, "Key": key("s2"), "UpdateExpression": "REMOVE p"}},
        {"Update": {"TableName": TABLE, "Key": key("s3"), "UpdateExpression": "REMOVE p"}},
    ]
    fits = actions + [put(sized(f"n{i}", 400_000)) for i in range(6)]
    refused(lambda: ddb.transact_write_items(
        TransactItems=actions + [put(sized(f"m{i}", 400_000)) for i in range(5)]
        + [put(sized("m5", 400_001))]), "ValidationException")
    assert item_size(stored(ddb, "s1")) == 400_000
    ddb.transact_write_items(TransactItems=fits)
    assert stored(ddb, "s1") is None and "p" not in stored(ddb, "s2")


def test_transact_get_items_reads_at_most_4000000_bytes(ddb):
    for i in range(11):
        ddb.put_item(TableName=TABLE, Item=sized(f"g{i}", 400_000))
    gets = [{"Get": {"TableName": TABLE, "Key": key(f"g{i}")}} for i in range(11)]
    assert len(ddb.transact_get_items(TransactItems=gets[:10])["Responses"]) == 10
    refused(lambda: ddb.transact_get_items(TransactItems=gets), "ValidationException")


@pytest.fixture()
def ranged(aws: Any) -> Any:
    """A table with a sort key, as the lane table has."""
    client = aws("dynamodb")
    client.create_table(TableName="ranged", BillingMode="PAY_PER_REQUEST",
                        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                   {"AttributeName": "sk", "KeyType": "RANGE"}],
                        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                              {"AttributeName": "sk", "AttributeType": "S"}])
    return client


def rkey(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def test_a_cancelled_transaction_leaves_every_item_it_named_as_it_was(ranged):
    # moto's rollback copied whole tables; the emulator's copies the items the actions name.
    ranged.put_item(TableName="ranged", Item={**rkey("a", "1"), "v": {"S": "old"}})
    ranged.put_item(TableName="ranged", Item={**rkey("a", "2"), "v": {"S": "doomed"}})
    with pytest.raises(ClientError) as e:
        ranged.transact_write_items(TransactItems=[
            {"Update": {"TableName": "ranged", "Key": rkey("a", "1"),
                        "UpdateExpression": "SET v = :new",
                        "ExpressionAttributeValues": {":new": {"S": "new"}}}},
            {"Delete": {"TableName": "ranged", "Key": rkey("a", "2")}},
            {"Put": {"TableName": "ranged", "Item": {**rkey("a", "3"), "v": {"S": "born"}}}},
            {"ConditionCheck": {"TableName": "ranged", "Key": rkey("b", "1"),
                                "ConditionExpression": "attribute_exists(pk)"}},
        ])
    assert e.value.response["Error"]["Code"] == "TransactionCanceledException"
    items = ranged.query(TableName="ranged", KeyConditionExpression="pk = :pk",
                         ExpressionAttributeValues={":pk": {"S": "a"}})["Items"]
    assert [(i["sk"]["S"], i["v"]["S"]) for i in items] == [("1", "old"), ("2", "doomed")]


def test_a_query_reads_its_partition_in_order_among_many(ranged):
    # The emulator hands moto's Query the partition alone: the answer is the same.
    for pk in ("a", "b", "c"):
        for sk in ("3", "1", "2"):
            ranged.put_item(TableName="ranged", Item=rkey(pk, sk))
    got = ranged.query(TableName="ranged", KeyConditionExpression="pk = :pk AND sk > :s",
                       ExpressionAttributeValues={":pk": {"S": "b"}, ":s": {"S": "1"}},
                       ScanIndexForward=False)["Items"]
    assert [(i["pk"]["S"], i["sk"]["S"]) for i in got] == [("b", "3"), ("b", "2")]
    empty = ranged.query(TableName="ranged", KeyConditionExpression="pk = :pk",
                         ExpressionAttributeValues={":pk": {"S": "none"}})["Items"]
    assert empty == []
