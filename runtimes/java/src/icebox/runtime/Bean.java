package icebox.runtime;

import java.lang.reflect.Constructor;
import java.lang.reflect.Field;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.lang.reflect.RecordComponent;
import java.lang.reflect.Type;
import java.lang.reflect.TypeVariable;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * How Mapper reads and writes one class: its constructor, the setters and
 * public fields it is read through, the getters and public fields it is
 * written from. Built once per class.
 */
final class Bean {
    private static final ClassValue<Bean> BEANS = new ClassValue<Bean>() {
        @Override
        protected Bean computeValue(Class<?> c) {
            return new Bean(c);
        }
    };

    /** The bean of c. */
    static Bean of(Class<?> c) {
        return BEANS.get(c);
    }

    final Class<?> c;
    final Constructor<?> ctor; // zero-argument, or canonical for records; null if none
    final RecordComponent[] components; // non-null for records
    final Map<String, Setter> setters = new LinkedHashMap<>();
    final List<Getter> getters = new ArrayList<>();
    private volatile Map<TypeVariable<?>, Types> env;

    Bean(Class<?> c) {
        this.c = c;
        if (c.isRecord()) {
            components = c.getRecordComponents();
            Class<?>[] types = new Class<?>[components.length];
            for (int i = 0; i < types.length; i++) {
                types[i] = components[i].getType();
            }
            ctor = declaredConstructor(c, types);
            for (RecordComponent rc : components) {
                Method acc = rc.getAccessor();
                acc.trySetAccessible();
                getters.add(new Getter(rc.getName(), acc, null));
            }
            return;
        }
        components = null;
        ctor = c.isInterface() || Modifier.isAbstract(c.getModifiers()) ? null : declaredConstructor(c);
        findSetters();
        findGetters();
    }

    Map<TypeVariable<?>, Types> env() {
        Map<TypeVariable<?>, Types> e = env;
        if (e == null) {
            e = Types.hierarchy(Types.of(c));
            env = e;
        }
        return e;
    }

    private static Constructor<?> declaredConstructor(Class<?> c, Class<?>... types) {
        try {
            Constructor<?> k = c.getDeclaredConstructor(types);
            k.trySetAccessible();
            return k;
        } catch (NoSuchMethodException | SecurityException e) {
            return null;
        }
    }

    /** Setters of any visibility, the subclass's first, then public fields. */
    private void findSetters() {
        for (Class<?> k = c; k != null && k != Object.class; k = k.getSuperclass()) {
            for (Method m : k.getDeclaredMethods()) {
                String n = m.getName();
                if (n.length() > 3 && n.startsWith("set") && m.getParameterCount() == 1
                        && !Modifier.isStatic(m.getModifiers()) && !m.isBridge() && !m.isSynthetic()) {
                    String p = decapitalize(n.substring(3));
                    if (!setters.containsKey(p) && m.trySetAccessible()) {
                        setters.put(p, new Setter(m, null, m.getGenericParameterTypes()[0]));
                    }
                }
            }
        }
        for (Field f : c.getFields()) {
            int mod = f.getModifiers();
            if (Modifier.isStatic(mod) || Modifier.isTransient(mod) || Modifier.isFinal(mod)) {
                continue;
            }
            if (!setters.containsKey(f.getName()) && f.trySetAccessible()) {
                setters.put(f.getName(), new Setter(null, f, f.getGenericType()));
            }
        }
    }

    /**
     * Public getters and public fields, ordered as the fields are
     * declared (superclass first), then getters without a field.
     */
    private void findGetters() {
        Map<String, Getter> byName = new LinkedHashMap<>();
        for (Method m : c.getMethods()) {
            if (Modifier.isStatic(m.getModifiers()) || m.getParameterCount() != 0 || m.isBridge() || m.isSynthetic()
                    || m.getDeclaringClass() == Object.class || m.getReturnType() == void.class) {
                continue;
            }
            String n = m.getName();
            String p;
            if (n.length() > 3 && n.startsWith("get")) {
                p = decapitalize(n.substring(3));
            } else if (n.length() > 2 && n.startsWith("is") && m.getReturnType() == boolean.class) {
                p = decapitalize(n.substring(2));
            } else {
                continue;
            }
            Getter prev = byName.get(p);
            // getX wins over isX for the same name, as with JavaBeans.
            if ((prev == null || n.startsWith("get")) && m.trySetAccessible()) {
                byName.put(p, new Getter(p, m, null));
            }
        }
        for (Field f : c.getFields()) {
            int mod = f.getModifiers();
            if (!Modifier.isStatic(mod) && !Modifier.isTransient(mod) && !byName.containsKey(f.getName()) && f.trySetAccessible()) {
                byName.put(f.getName(), new Getter(f.getName(), null, f));
            }
        }
        List<Class<?>> chain = new ArrayList<>();
        for (Class<?> k = c; k != null && k != Object.class; k = k.getSuperclass()) {
            chain.add(0, k);
        }
        for (Class<?> k : chain) {
            for (Field f : k.getDeclaredFields()) {
                Getter g = byName.remove(f.getName());
                if (g != null) {
                    getters.add(g);
                }
            }
        }
        getters.addAll(byName.values());
    }

    /** Property names as java.beans.Introspector.decapitalize makes them. */
    static String decapitalize(String s) {
        if (s.isEmpty() || (s.length() > 1 && Character.isUpperCase(s.charAt(0)) && Character.isUpperCase(s.charAt(1)))) {
            return s;
        }
        return Character.toLowerCase(s.charAt(0)) + s.substring(1);
    }

    /** Writes one property: a setter or a public field. */
    static final class Setter {
        final Method method;
        final Field field;
        final Type type;

        Setter(Method method, Field field, Type type) {
            this.method = method;
            this.field = field;
            this.type = type;
        }

        void set(Object o, Object val) {
            Class<?> t = method != null ? method.getParameterTypes()[0] : field.getType();
            if (val == null && t.isPrimitive()) {
                return;
            }
            try {
                if (method != null) {
                    method.invoke(o, val);
                } else {
                    field.set(o, val);
                }
            } catch (InvocationTargetException e) {
                throw new Mapper.MappingException("Setter " + method.getName() + " failed", e.getCause());
            } catch (IllegalAccessException | IllegalArgumentException e) {
                throw new Mapper.MappingException("Cannot set property of " + o.getClass().getName(), e);
            }
        }
    }

    /** Reads one property: a getter or a public field. */
    static final class Getter {
        final String name;
        final Method method;
        final Field field;

        Getter(String name, Method method, Field field) {
            this.name = name;
            this.method = method;
            this.field = field;
        }

        Object get(Object o) {
            try {
                return method != null ? method.invoke(o) : field.get(o);
            } catch (InvocationTargetException e) {
                throw new Mapper.MappingException("Getter " + method.getName() + " of " + o.getClass().getName() + " failed", e.getCause());
            } catch (IllegalAccessException e) {
                throw new Mapper.MappingException("Cannot read property " + name + " of " + o.getClass().getName(), e);
            }
        }
    }
}
