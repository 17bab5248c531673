package example;

import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.RequestHandler;

/** A constructor that throws: the function's init fails with that exception. */
public class BadConstructor implements RequestHandler<String, String> {
    public BadConstructor() {
        throw new UnsupportedOperationException("no database configured");
    }

    @Override
    public String handleRequest(String in, Context context) {
        return in;
    }
}
