"""A Protobuf peer in another language, for the cross-language tests.

Loads the message types from a FileDescriptorSet (compiled from proto/ by the Rust test, so
no protoc is needed), then either encodes a known TransactionBatch of one TransactionEvent,
the shape ingest publishes (`encode`), or decodes an
AggregateUpdate from hex on stdin and prints it as JSON (`decode`).
"""
import json
import sys

from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory


def load(descriptor_path):
    file_set = descriptor_pb2.FileDescriptorSet()
    with open(descriptor_path, "rb") as handle:
        file_set.ParseFromString(handle.read())
    pool = descriptor_pool.DescriptorPool()
    for file_proto in file_set.file:
        pool.Add(file_proto)
    return lambda name: message_factory.GetMessageClass(pool.FindMessageTypeByName(name))


def main():
    mode, descriptor_path = sys.argv[1], sys.argv[2]
    message_class = load(descriptor_path)
    if mode == "encode":
        event = message_class("altdata.v1.TransactionEvent")(
            schema_version=1,
            provider="pyprov",
            txn_id="py-42",
            metric_date=20_000,
            amount_cents=-1234,
            customer_key=2**63 + 5,
            merchant_id=987654321,
            region="CA",
            mcc="5814",
            resolution=3,
            confidence=0.75,
        )
        batch = message_class("altdata.v1.TransactionBatch")(schema_version=1)
        batch.events.append(event)
        sys.stdout.write(batch.SerializeToString().hex())
    elif mode == "decode":
        update = message_class("altdata.v1.AggregateUpdate")()
        update.ParseFromString(bytes.fromhex(sys.stdin.read().strip()))
        print(json.dumps(json_format.MessageToDict(update, preserving_proto_field_name=True)))
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
