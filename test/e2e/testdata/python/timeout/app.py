import time


def handler(event, context):
    print("going to sleep with", context.get_remaining_time_in_millis(), "ms left")
    time.sleep(5)
    return "woke up"
