package icebox.runtime;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A problem with the function's code found by the runtime rather than
 * thrown by the handler: a class that is missing, has no handler method,
 * or failed to initialise. Its error body carries the message and, when
 * there is one, the type of the underlying exception, and no stack trace,
 * as Lambda's Java runtime reports such faults.
 */
final class Fault extends RuntimeException {
    private static final long serialVersionUID = 1L;

    /** The underlying exception's class name, or null. */
    final String errorType;
    /** The underlying exception's stack trace, for the log only; may be null. */
    final String trace;
    /** A fatal fault ends the environment: at init, or after the call it failed. */
    final boolean fatal;

    Fault(String message, String errorType, String trace, boolean fatal) {
        super(message, null, false, false);
        this.errorType = errorType;
        this.trace = trace;
        this.fatal = fatal;
    }

    /** A fault carrying an exception: its message (or class name), type and trace. */
    static Fault of(Throwable t, boolean fatal) {
        String msg = t.getLocalizedMessage() == null ? t.getClass().getName() : t.getLocalizedMessage();
        return new Fault(msg, t.getClass().getName(), trace(t), fatal);
    }

    /** A handler class that failed to load or initialise. */
    static Fault loading(String className, Throwable t, boolean fatal) {
        return new Fault("Error loading class " + className + (t.getMessage() == null ? "" : ": " + t.getMessage()),
                t.getClass().getName(), trace(t), fatal);
    }

    /** {"errorMessage", "errorType"?} */
    byte[] body() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("errorMessage", getMessage());
        if (errorType != null) {
            m.put("errorType", errorType);
        }
        return Json.write(m).getBytes(java.nio.charset.StandardCharsets.UTF_8);
    }

    /** What the log gets: the message, and the exception type and trace when known. */
    String report() {
        if (errorType == null && trace == null) {
            return getMessage() + "\n";
        }
        return getMessage() + ": " + (errorType == null ? "" : errorType) + "\n" + (trace == null ? "" : trace) + "\n";
    }

    /** t's stack trace as printStackTrace writes it, runtime frames removed. */
    static String trace(Throwable t) {
        Errors.filter(t);
        StringWriter w = new StringWriter();
        t.printStackTrace(new PrintWriter(w));
        return w.toString();
    }
}
