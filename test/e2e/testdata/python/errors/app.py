calls = 0


def validate(order):
    if "id" not in order:
        raise ValueError("boom")


def handler(event, context):
    global calls
    calls += 1
    action = event.get("action")
    if action == "raise":
        validate({})
    if action == "custom":
        class OrderRejected(Exception):
            pass
        raise OrderRejected("order 42 rejected")
    if action == "unserializable":
        return {"tags": {"a", "b"}}
    if action == "big":
        return "x" * (7 << 20)
    if action == "bytes":
        return b"raw bytes"
    if action == "echo":
        return event
    return {"calls": calls}
