package icebox.runtime;

import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.RequestHandler;
import com.amazonaws.services.lambda.runtime.RequestStreamHandler;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.nio.charset.StandardCharsets;

/** The user's handler, ready to run one event after another. */
interface Handler {

    /** Runs the handler on one event, writing the response to out. */
    void handle(byte[] event, Context context, ByteArrayOutputStream out) throws Throwable;

    byte[] NULL = {'n', 'u', 'l', 'l'};

    /** Reads the event as JSON into the type the handler takes. */
    static Object input(byte[] event, Types type) {
        try {
            Object tree = event.length == 0 ? null : Json.parse(new String(event, StandardCharsets.UTF_8));
            return Mapper.fromJson(tree, type);
        } catch (Throwable t) {
            throw new RuntimeException("An error occurred during JSON parsing", t);
        }
    }

    /** Writes what the handler returned as JSON. */
    static void output(Object value, ByteArrayOutputStream out) {
        byte[] b;
        try {
            b = Mapper.toJson(value).getBytes(StandardCharsets.UTF_8);
        } catch (Throwable t) {
            throw new RuntimeException("An error occurred during JSON serialization of response", t);
        }
        out.write(b, 0, b.length);
    }

    /** The cause of a reflective call's failure: what the user's code threw. */
    static Throwable unwrap(InvocationTargetException e) {
        return e.getCause() != null ? e.getCause() : e;
    }

    /** A handler that fails every call with a fault found while loading it. */
    final class Faulty implements Handler {
        final Fault fault;

        Faulty(Fault fault) {
            this.fault = fault;
        }

        @Override
        public void handle(byte[] event, Context context, ByteArrayOutputStream out) {
            throw fault;
        }
    }

    /** A class implementing RequestStreamHandler. */
    final class Stream implements Handler {
        private final RequestStreamHandler target;

        Stream(RequestStreamHandler target) {
            this.target = target;
        }

        @Override
        public void handle(byte[] event, Context context, ByteArrayOutputStream out) throws Throwable {
            target.handleRequest(new ByteArrayInputStream(event), out, context);
        }
    }

    /** A class implementing RequestHandler&lt;I, O&gt;. */
    final class Pojo implements Handler {
        private final RequestHandler<Object, Object> target;
        private final Types in;
        private final boolean voidOut;

        Pojo(RequestHandler<Object, Object> target, Types in, boolean voidOut) {
            this.target = target;
            this.in = in;
            this.voidOut = voidOut;
        }

        @Override
        public void handle(byte[] event, Context context, ByteArrayOutputStream out) {
            Object result = target.handleRequest(input(event, in), context);
            if (voidOut) {
                out.write(NULL, 0, NULL.length);
            } else {
                output(result, out);
            }
        }
    }

    /** A method taking (), (I), (Context) or (I, Context) and returning O or void. */
    final class PojoMethod implements Handler {
        private final Method method;
        private final Object instance;
        private final Types in; // null: the method takes no input
        private final boolean withContext;

        PojoMethod(Method method, Object instance, Types in, boolean withContext) {
            this.method = method;
            this.instance = instance;
            this.in = in;
            this.withContext = withContext;
        }

        @Override
        public void handle(byte[] event, Context context, ByteArrayOutputStream out) throws Throwable {
            Object[] args = new Object[(in != null ? 1 : 0) + (withContext ? 1 : 0)];
            int i = 0;
            if (in != null) {
                args[i++] = input(event, in);
            }
            if (withContext) {
                args[i] = context;
            }
            Object result;
            try {
                result = method.invoke(instance, args);
            } catch (InvocationTargetException e) {
                throw unwrap(e);
            }
            if (method.getReturnType() == void.class || method.getReturnType() == Void.class) {
                out.write(NULL, 0, NULL.length);
            } else {
                output(result, out);
            }
        }
    }

    /** A method taking some of (InputStream, OutputStream, Context), in that order. */
    final class StreamMethod implements Handler {
        private final Method method;
        private final Object instance;
        private final boolean withInput;
        private final boolean withOutput;
        private final boolean withContext;

        StreamMethod(Method method, Object instance, boolean withInput, boolean withOutput, boolean withContext) {
            this.method = method;
            this.instance = instance;
            this.withInput = withInput;
            this.withOutput = withOutput;
            this.withContext = withContext;
        }

        @Override
        public void handle(byte[] event, Context context, ByteArrayOutputStream out) throws Throwable {
            Object[] args = new Object[(withInput ? 1 : 0) + (withOutput ? 1 : 0) + (withContext ? 1 : 0)];
            int i = 0;
            if (withInput) {
                args[i++] = (InputStream) new ByteArrayInputStream(event);
            }
            if (withOutput) {
                args[i++] = (OutputStream) out;
            }
            if (withContext) {
                args[i] = context;
            }
            try {
                method.invoke(instance, args);
            } catch (InvocationTargetException e) {
                throw unwrap(e);
            }
            if (!withOutput) {
                out.write(NULL, 0, NULL.length);
            }
        }
    }
}
