def total(items):
    return sum(i["price"] * i.get("qty", 1) for i in items)
