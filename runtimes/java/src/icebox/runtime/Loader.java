package icebox.runtime;

import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.RequestHandler;
import com.amazonaws.services.lambda.runtime.RequestStreamHandler;
import java.io.InputStream;
import java.io.OutputStream;
import java.lang.reflect.Constructor;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.lang.reflect.Type;
import java.lang.reflect.TypeVariable;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;

/**
 * Turns a handler string into a Handler, as Lambda's Java runtime does.
 *
 * <p>Loading the class runs its static initialisers, and creating the
 * handler object runs its constructor: both are the function's init. When
 * they throw, load throws a fatal Fault for /runtime/init/error. Other
 * problems (class or method not found, wrong interface) are not init
 * failures in Lambda: the environment starts and every call fails with the
 * fault, so load returns a Handler.Faulty for them.
 */
final class Loader {

    private Loader() {
    }

    static Handler load(String handler, ClassLoader loader) {
        int sep = handler.indexOf("::");
        String className = sep < 0 ? handler : handler.substring(0, sep);
        String methodName = sep < 0 ? null : handler.substring(sep + 2);
        if (className.isEmpty() || (methodName != null && methodName.isEmpty())) {
            return new Handler.Faulty(new Fault("Invalid handler: `" + handler + "'", null, null, false));
        }
        Class<?> c;
        try {
            c = Class.forName(className, true, loader);
        } catch (ClassNotFoundException e) {
            return new Handler.Faulty(new Fault("Class not found: " + className, e.getClass().getName(), Fault.trace(e), false));
        } catch (NoClassDefFoundError e) {
            return new Handler.Faulty(Fault.loading(className, e, true));
        } catch (Throwable t) {
            throw Fault.loading(className, t, true);
        }
        try {
            return methodName == null ? forClass(c) : forMethod(c, methodName);
        } catch (Fault f) {
            if (f.fatal) {
                throw f;
            }
            return new Handler.Faulty(f);
        }
    }

    /** `pkg.Class`: the class implements RequestStreamHandler or RequestHandler. */
    @SuppressWarnings("unchecked")
    private static Handler forClass(Class<?> c) {
        if (RequestStreamHandler.class.isAssignableFrom(c)) {
            return new Handler.Stream((RequestStreamHandler) instantiate(c));
        }
        if (!RequestHandler.class.isAssignableFrom(c)) {
            throw new Fault("Class does not implement an appropriate handler interface: " + c.getName(), null, null, false);
        }
        Map<TypeVariable<?>, Types> env = Types.hierarchy(Types.of(c));
        TypeVariable<?>[] params = RequestHandler.class.getTypeParameters();
        if (!Types.binds(env, RequestHandler.class, 0) || !Types.binds(env, RequestHandler.class, 1)) {
            throw new Fault("Class " + c.getName() + " does not implement RequestHandler with concrete type parameters", null, null, false);
        }
        Types in = new Types(params[0], env).resolved();
        Types out = new Types(params[1], env).resolved();
        Class<?> outRaw = out.raw();
        return new Handler.Pojo((RequestHandler<Object, Object>) instantiate(c), in, outRaw == Void.class || outRaw == void.class);
    }

    /** `pkg.Class::method`: the best public method of that name with a supported signature. */
    private static Handler forMethod(Class<?> c, String name) {
        List<Method> candidates = new ArrayList<>();
        try {
            for (Method m : c.getMethods()) {
                if (m.getName().equals(name)) {
                    candidates.add(m);
                }
            }
        } catch (NoClassDefFoundError e) {
            throw new Fault("Error loading method " + name + " on class " + c.getName(), e.getClass().getName(), Fault.trace(e), false);
        }
        candidates.sort(PRIORITY);
        for (Method m : candidates) {
            Handler h = forOverload(c, m);
            if (h != null) {
                return h;
            }
        }
        throw new Fault("No public method named " + name + " with appropriate method signature found on class " + c.getName(), null, null, false);
    }

    /**
     * Lambda's order among overloads: methods the compiler wrote (not
     * bridges) first, then longer parameter lists, a trailing Context
     * counting as one more parameter. (A class, not a lambda: the first
     * lambda a JVM runs costs milliseconds of cold start.)
     */
    private static final Comparator<Method> PRIORITY = new Comparator<Method>() {
        @Override
        public int compare(Method a, Method b) {
            if (a.isBridge() != b.isBridge()) {
                return a.isBridge() ? 1 : -1;
            }
            return Integer.compare(weight(b), weight(a));
        }
    };

    private static int weight(Method m) {
        Class<?>[] p = m.getParameterTypes();
        return p.length + (p.length > 0 && p[p.length - 1] == Context.class ? 1 : 0);
    }

    /** A handler for m if its signature is supported, else null. */
    private static Handler forOverload(Class<?> c, Method m) {
        Class<?>[] p = m.getParameterTypes();
        Type[] g = m.getGenericParameterTypes();
        switch (p.length) {
            case 0:
                return pojo(c, m, null, false);
            case 1:
                if (p[0] == InputStream.class) {
                    return stream(c, m, true, false, false);
                }
                if (p[0] == OutputStream.class) {
                    return stream(c, m, false, true, false);
                }
                if (p[0] == Context.class) {
                    return pojo(c, m, null, true);
                }
                return pojo(c, m, g[0], false);
            case 2:
                if (p[0] == OutputStream.class) {
                    return p[1] == Context.class ? stream(c, m, false, true, true) : null;
                }
                if (p[0] == Context.class) {
                    return null;
                }
                if (p[0] == InputStream.class) {
                    if (p[1] == OutputStream.class) {
                        return stream(c, m, true, true, false);
                    }
                    return p[1] == Context.class ? stream(c, m, true, false, true) : null;
                }
                return p[1] == Context.class ? pojo(c, m, g[0], true) : null;
            case 3:
                if (p[0] == InputStream.class && p[1] == OutputStream.class && p[2] == Context.class) {
                    return stream(c, m, true, true, true);
                }
                return null;
            default:
                return null;
        }
    }

    private static Handler pojo(Class<?> c, Method m, Type in, boolean withContext) {
        m.trySetAccessible();
        Types input = in == null ? null : new Types(in, Types.hierarchy(Types.of(c)));
        return new Handler.PojoMethod(m, instanceFor(c, m), input, withContext);
    }

    private static Handler stream(Class<?> c, Method m, boolean in, boolean out, boolean ctx) {
        m.trySetAccessible();
        return new Handler.StreamMethod(m, instanceFor(c, m), in, out, ctx);
    }

    private static Object instanceFor(Class<?> c, Method m) {
        return Modifier.isStatic(m.getModifiers()) ? null : instantiate(c);
    }

    /**
     * Creates the handler object with its public zero-argument constructor.
     * A constructor that throws fails init (fatal); a class that cannot be
     * constructed at all fails each call.
     */
    private static Object instantiate(Class<?> c) {
        Constructor<?> k;
        try {
            k = c.getConstructor();
        } catch (NoSuchMethodException e) {
            Exception why = c.getEnclosingClass() != null && !Modifier.isStatic(c.getModifiers())
                    ? new Exception("Class " + c.getName() + " cannot be instantiated because it is a non-static inner class")
                    : new Exception("Class " + c.getName() + " has no public zero-argument constructor", e);
            throw Fault.of(why, false);
        }
        k.trySetAccessible();
        try {
            return k.newInstance();
        } catch (InvocationTargetException e) {
            throw Fault.of(Handler.unwrap(e), true);
        } catch (ReflectiveOperationException | RuntimeException e) {
            throw Fault.of(e, false);
        } catch (ExceptionInInitializerError e) {
            throw Fault.of(e, true);
        }
    }
}
