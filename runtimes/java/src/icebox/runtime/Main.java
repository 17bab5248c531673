package icebox.runtime;

import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.IOError;
import java.io.IOException;
import java.net.MalformedURLException;
import java.net.URL;
import java.net.URLClassLoader;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * icebox's Java runtime: loads the function's handler from /var/task (and
 * the jars in /var/task/lib and /opt/java/lib), then serves events from the
 * Runtime API one at a time until the environment is destroyed.
 */
public final class Main {
    private static final String TRACE_PROPERTY = "com.amazonaws.xray.traceHeader";

    private Main() {
    }

    public static void main(String[] args) throws Exception {
        String handlerName = args.length > 0 ? args[0] : System.getenv("_HANDLER");
        String api = System.getenv("AWS_LAMBDA_RUNTIME_API");
        if (api == null || api.isEmpty() || handlerName == null) {
            System.err.println("icebox runtime: AWS_LAMBDA_RUNTIME_API and _HANDLER must be set");
            System.exit(2);
        }
        Invocation.Function function = new Invocation.Function();
        RuntimeApi runtime = new RuntimeApi(api, function);

        ClassLoader loader = taskLoader();
        Thread.currentThread().setContextClassLoader(loader);
        Handler handler;
        try {
            handler = Loader.load(handlerName, loader);
        } catch (Fault f) {
            function.logger.error(f.report());
            runtime.initError(f.body(), f.errorType != null ? f.errorType : "Runtime.BadFunctionCode");
            System.exit(1);
            return;
        }
        flush(); // what init printed belongs to init, not to the first call
        try {
            serve(runtime, handler, function.logger);
        } catch (IOException e) {
            // The Runtime API went away: icebox is shutting the environment
            // down, which is no error of the function's (Lambda's runtimes
            // write nothing then either).
            System.exit(0);
        }
    }

    /** The loader for the function's code: the task root, then its jars and the layers' jars. */
    private static ClassLoader taskLoader() throws MalformedURLException {
        String root = System.getenv("LAMBDA_TASK_ROOT");
        if (root == null || root.isEmpty()) {
            root = "/var/task";
        }
        List<URL> urls = new ArrayList<>();
        urls.add(new File(root).toURI().toURL());
        addJars(new File(root, "lib"), urls);
        addJars(new File("/opt/java/lib"), urls);
        // The runtime's own classes (the Lambda interfaces among them) come
        // from the parent, so a jar bundling aws-lambda-java-core still sees
        // the same Context and RequestHandler the runtime passes.
        return new URLClassLoader(urls.toArray(new URL[0]), Main.class.getClassLoader());
    }

    private static void addJars(File dir, List<URL> urls) throws MalformedURLException {
        String[] names = dir.list();
        if (names == null) {
            return;
        }
        Arrays.sort(names);
        for (String n : names) {
            if (n.endsWith(".jar")) {
                urls.add(new File(dir, n).toURI().toURL());
            }
        }
    }

    private static void serve(RuntimeApi runtime, Handler handler, Logger logger) throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream(1024);
        for (;;) {
            Invocation inv = runtime.next();
            logger.requestId = inv.requestId;
            if (inv.traceId != null) {
                System.setProperty(TRACE_PROPERTY, inv.traceId);
            } else {
                System.clearProperty(TRACE_PROPERTY);
            }
            out.reset();
            int exit = 0; // 1: end the environment after this call; 2: at once
            try {
                handler.handle(inv.body, inv, out);
                flush();
                runtime.respond(inv.requestId, out.toByteArray());
            } catch (Fault f) {
                flush();
                logger.error(f.report());
                runtime.error(inv.requestId, f.body(), f.errorType != null ? f.errorType : "Runtime.BadFunctionCode");
                exit = f.fatal ? 1 : 0;
            } catch (Throwable t) {
                flush();
                byte[] body = Errors.body(t);
                logger.error(Fault.of(t, false).report());
                runtime.error(inv.requestId, body, t.getClass().getName());
                // After these the JVM cannot be trusted with another call,
                // nor with running shutdown hooks.
                exit = t instanceof VirtualMachineError || t instanceof IOError ? 2 : 0;
            }
            if (out.size() > (8 << 20)) {
                out = new ByteArrayOutputStream(1024); // don't keep a huge buffer warm
            }
            Thread.interrupted(); // a handler's interrupt must not leak into the next call
            if (exit == 2) {
                Runtime.getRuntime().halt(1);
            } else if (exit == 1) {
                System.exit(1);
            }
        }
    }

    private static void flush() {
        System.out.flush();
        System.err.flush();
    }
}
