package com.amazonaws.services.lambda.runtime;

/** Access to the runtime's logger outside a handler call. */
public final class LambdaRuntime {

    private static volatile LambdaLogger logger = new LambdaLogger() {
        public void log(String message) {
            System.out.print(message);
            System.out.flush();
        }

        public void log(byte[] message) {
            System.out.write(message, 0, message.length);
            System.out.flush();
        }
    };

    private LambdaRuntime() {
    }

    /** The logger writing to the function's log. */
    public static LambdaLogger getLogger() {
        return logger;
    }
}
