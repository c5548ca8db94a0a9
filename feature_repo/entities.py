"""Entities: the join keys every feature view is keyed by."""

from feast import Entity, ValueType

user = Entity(
    name="user",
    join_keys=["user_id"],
    value_type=ValueType.INT64,
    description="A shopper; `user_id` from users.parquet and the events.",
)

item = Entity(
    name="item",
    join_keys=["item_id"],
    value_type=ValueType.INT64,
    description="A catalogue item; `item_id` from items.parquet and the events.",
)
