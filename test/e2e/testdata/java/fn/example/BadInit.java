package example;

import com.amazonaws.services.lambda.runtime.Context;

/** A static initialiser that throws: the function's init fails. */
public class BadInit {
    static {
        if (System.getenv("AWS_LAMBDA_FUNCTION_NAME") != null) {
            throw new IllegalStateException("cannot start");
        }
    }

    public String handleRequest(String in, Context context) {
        return in;
    }
}
