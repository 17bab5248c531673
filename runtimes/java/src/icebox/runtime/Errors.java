package icebox.runtime;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/** Lambda's error body for an exception a handler threw. */
final class Errors {
    private static final String RUNTIME_PACKAGE = Errors.class.getPackageName() + ".";

    private Errors() {
    }

    /** {"errorMessage", "errorType", "stackTrace": [frames]} for t. */
    static byte[] body(Throwable t) {
        filter(t);
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("errorMessage", t.getLocalizedMessage() == null ? t.getClass().getName() : t.getLocalizedMessage());
        m.put("errorType", t.getClass().getName());
        List<String> frames = new ArrayList<>();
        for (StackTraceElement e : t.getStackTrace()) {
            frames.add(e.toString());
        }
        m.put("stackTrace", frames);
        return Json.write(m).getBytes(StandardCharsets.UTF_8);
    }

    /**
     * Cuts the runtime's own frames (and what called them) off t's stack
     * trace and those of its causes and suppressed exceptions, with the
     * reflection frames through which the runtime called the handler, so a
     * user sees their code down to the point the runtime called it, as on
     * Lambda.
     */
    static void filter(Throwable t) {
        filter(t, Collections.newSetFromMap(new IdentityHashMap<>()));
    }

    private static boolean isReflection(String cls) {
        return cls.startsWith("jdk.internal.reflect.") || cls.startsWith("java.lang.reflect.")
                || cls.startsWith("java.lang.invoke.") || cls.startsWith("sun.reflect.");
    }

    private static void filter(Throwable t, Set<Throwable> seen) {
        if (t == null || !seen.add(t)) {
            return;
        }
        StackTraceElement[] st = t.getStackTrace();
        for (int i = 0; i < st.length; i++) {
            if (st[i].getClassName().startsWith(RUNTIME_PACKAGE)) {
                int end = i;
                while (end > 0 && isReflection(st[end - 1].getClassName())) {
                    end--;
                }
                StackTraceElement[] cut = new StackTraceElement[end];
                System.arraycopy(st, 0, cut, 0, end);
                t.setStackTrace(cut);
                break;
            }
        }
        filter(t.getCause(), seen);
        for (Throwable s : t.getSuppressed()) {
            filter(s, seen);
        }
    }
}
