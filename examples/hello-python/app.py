"""The quick start's Python function (runtime python3.11, handler app.handler)."""


def handler(event, context):
    name = (event or {}).get("name") or "world"
    print(f"saying hello to {name}")
    return {"message": f"Hello, {name}!"}
