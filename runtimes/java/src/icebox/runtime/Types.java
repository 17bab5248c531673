package icebox.runtime;

import java.lang.reflect.GenericArrayType;
import java.lang.reflect.ParameterizedType;
import java.lang.reflect.Type;
import java.lang.reflect.TypeVariable;
import java.lang.reflect.WildcardType;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;

/**
 * A generic type together with the bindings of the type variables it may
 * mention, so that List&lt;T&gt; inside Box&lt;Order&gt; maps elements as Order.
 * Type variables of different classes are distinct objects, so one flat
 * map can hold the bindings of a class and all its supertypes.
 */
final class Types {
    final Type type;
    final Map<TypeVariable<?>, Types> env;

    static final Types OBJECT = new Types(Object.class, Collections.emptyMap());

    Types(Type type, Map<TypeVariable<?>, Types> env) {
        this.type = type;
        this.env = env;
    }

    static Types of(Type t) {
        return new Types(t, Collections.emptyMap());
    }

    /** t as seen from this type's bindings. */
    Types with(Type t) {
        return new Types(t, env);
    }

    /**
     * Follows bound type variables and wildcards to a class, parameterized
     * type or array type. A variable with no binding becomes its first bound.
     */
    Types resolved() {
        Types r = this;
        for (int i = 0; i < 64; i++) {
            if (r.type instanceof TypeVariable) {
                Types b = r.env.get(r.type);
                if (b == null) {
                    Type[] bounds = ((TypeVariable<?>) r.type).getBounds();
                    b = r.with(bounds.length > 0 ? bounds[0] : Object.class);
                }
                r = b;
            } else if (r.type instanceof WildcardType) {
                Type[] upper = ((WildcardType) r.type).getUpperBounds();
                r = r.with(upper.length > 0 ? upper[0] : Object.class);
            } else {
                return r;
            }
        }
        return OBJECT;
    }

    /** The erasure of a resolved type. */
    Class<?> raw() {
        Types r = resolved();
        if (r.type instanceof Class) {
            return (Class<?>) r.type;
        }
        if (r.type instanceof ParameterizedType) {
            return (Class<?>) ((ParameterizedType) r.type).getRawType();
        }
        if (r.type instanceof GenericArrayType) {
            Class<?> c = r.with(((GenericArrayType) r.type).getGenericComponentType()).raw();
            return java.lang.reflect.Array.newInstance(c, 0).getClass();
        }
        return Object.class;
    }

    /**
     * The binding of one of target's type parameters as seen from this type,
     * e.g. Collection's E for a List&lt;String&gt; or a class extending
     * ArrayList&lt;Order&gt;; OBJECT when the hierarchy leaves it open.
     */
    Types parameter(Class<?> target, int index) {
        Types r = resolved();
        // Fast path for the common case: the type itself is target<...>.
        if (r.type instanceof ParameterizedType && ((ParameterizedType) r.type).getRawType() == target) {
            return r.with(((ParameterizedType) r.type).getActualTypeArguments()[index]).resolved();
        }
        Map<TypeVariable<?>, Types> env = hierarchy(r);
        Types b = env.get(target.getTypeParameters()[index]);
        return b == null ? OBJECT : b.resolved();
    }

    /** True when the hierarchy binds target's type parameter to something. */
    static boolean binds(Map<TypeVariable<?>, Types> env, Class<?> target, int index) {
        return env.containsKey(target.getTypeParameters()[index]);
    }

    /**
     * The bindings of the type parameters of r's class and of all its
     * superclasses and interfaces.
     */
    static Map<TypeVariable<?>, Types> hierarchy(Types r) {
        r = r.resolved();
        Class<?> c = r.raw();
        Map<TypeVariable<?>, Types> env = new HashMap<>();
        if (r.type instanceof ParameterizedType) {
            bind(c, ((ParameterizedType) r.type).getActualTypeArguments(), r.env, env);
        }
        addSupertypes(c, env, new HashSet<>());
        return env;
    }

    private static void bind(Class<?> c, Type[] args, Map<TypeVariable<?>, Types> argEnv, Map<TypeVariable<?>, Types> env) {
        TypeVariable<?>[] params = c.getTypeParameters();
        for (int i = 0; i < params.length && i < args.length; i++) {
            env.putIfAbsent(params[i], new Types(args[i], argEnv));
        }
    }

    private static void addSupertypes(Class<?> c, Map<TypeVariable<?>, Types> env, Set<Class<?>> seen) {
        Type sup = c.getGenericSuperclass();
        if (sup != null) {
            addSupertype(sup, env, seen);
        }
        for (Type i : c.getGenericInterfaces()) {
            addSupertype(i, env, seen);
        }
    }

    private static void addSupertype(Type t, Map<TypeVariable<?>, Types> env, Set<Class<?>> seen) {
        Class<?> sc;
        if (t instanceof ParameterizedType) {
            sc = (Class<?>) ((ParameterizedType) t).getRawType();
            // The arguments mention variables of the subtype, which env binds.
            bind(sc, ((ParameterizedType) t).getActualTypeArguments(), env, env);
        } else if (t instanceof Class) {
            sc = (Class<?>) t;
        } else {
            return;
        }
        if (seen.add(sc)) {
            addSupertypes(sc, env, seen);
        }
    }

    @Override
    public String toString() {
        return type.getTypeName();
    }
}
