package example;

import com.amazonaws.services.lambda.runtime.Context;
import java.util.Map;

/** Throws from a nested call: errorType is the exception's class, stackTrace its frames. */
public class Fail {
    public String handleRequest(Map<String, Object> event, Context context) {
        String kind = String.valueOf(event.get("kind"));
        switch (kind) {
            case "state":
                check(false);
                return "unreachable";
            case "npe":
                Object o = null;
                return o.toString();
            case "error":
                throw new AssertionError("custom error");
            case "oom":
                java.util.List<long[]> hog = new java.util.ArrayList<>();
                for (;;) {
                    hog.add(new long[1 << 20]);
                }
            case "sleep":
                try {
                    Thread.sleep(((Number) event.get("ms")).longValue());
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                return "slept";
            default:
                return "ok " + kind;
        }
    }

    private static void check(boolean ok) {
        if (!ok) {
            throw new IllegalStateException("state is wrong");
        }
    }
}
