"""A downstream subscriber in another language: reads AggregateUpdate messages from the
aggregate stream with nats-py and prints one JSON object per update.

usage: agg_subscriber.py NATS_URL STREAM SUBJECT DESCRIPTOR_SET EXPECTED_COUNT
"""
import asyncio
import json
import sys

import nats
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory


def update_class(descriptor_path):
    file_set = descriptor_pb2.FileDescriptorSet()
    with open(descriptor_path, "rb") as handle:
        file_set.ParseFromString(handle.read())
    pool = descriptor_pool.DescriptorPool()
    for file_proto in file_set.file:
        pool.Add(file_proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("altdata.v1.AggregateUpdate"))


async def main():
    url, stream, subject, descriptor_path, expected = sys.argv[1:6]
    expected = int(expected)
    AggregateUpdate = update_class(descriptor_path)
    connection = await nats.connect(url)
    jetstream = connection.jetstream()
    subscription = await jetstream.subscribe(subject, stream=stream, ordered_consumer=True)
    seen = 0
    try:
        while seen < expected:
            message = await subscription.next_msg(timeout=10)
            update = AggregateUpdate()
            update.ParseFromString(message.data)
            record = json_format.MessageToDict(update, preserving_proto_field_name=True)
            record["subject"] = message.subject
            print(json.dumps(record), flush=True)
            seen += 1
    finally:
        await connection.close()


if __name__ == "__main__":
    asyncio.run(main())
