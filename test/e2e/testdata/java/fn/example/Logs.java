package example;

import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.LambdaLogger;
import com.amazonaws.services.lambda.runtime.logging.LogLevel;
import java.util.Map;

/** Logs a multi-line message, a record at INFO and one at ERROR; returns the call's trace header. */
public class Logs {
    public String handleRequest(Map<String, Object> event, Context context) {
        LambdaLogger log = context.getLogger();
        log.log("first line\nsecond line");
        log.log("dropped info", LogLevel.INFO);
        log.log("json error " + event.get("n"), LogLevel.ERROR);
        return System.getProperty("com.amazonaws.xray.traceHeader");
    }
}
