package icebox.runtime;

import java.lang.reflect.Array;
import java.lang.reflect.Constructor;
import java.lang.reflect.GenericArrayType;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.lang.reflect.RecordComponent;
import java.lang.reflect.TypeVariable;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Calendar;
import java.util.Collection;
import java.util.Date;
import java.util.EnumSet;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.NavigableMap;
import java.util.NavigableSet;
import java.util.Optional;
import java.util.Queue;
import java.util.Set;
import java.util.SortedMap;
import java.util.SortedSet;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentMap;

/**
 * Maps JSON trees (see Json) to Java objects of a declared type and Java
 * objects back to JSON, following the conventions of Lambda's Java runtime
 * serializer: bean setters (any visibility) and public fields are written,
 * public getters and public fields are read, names follow the JavaBeans
 * rules (getURL is "URL", getName is "name"), unknown properties are
 * ignored, null properties are left out of the output, a single value is
 * accepted where an array is expected, and an empty string or empty array
 * reads as a null object. Records map through their components.
 */
final class Mapper {

    private Mapper() {
    }

    /** The JSON does not fit the declared type. */
    static final class MappingException extends RuntimeException {
        private static final long serialVersionUID = 1L;

        MappingException(String msg) {
            super(msg);
        }

        MappingException(String msg, Throwable cause) {
            super(msg, cause);
        }
    }

    // ---------------------------------------------------------------- reading

    /** Converts a JSON tree to the type t. */
    static Object fromJson(Object v, Types t) {
        Types r = t.resolved();
        Class<?> c = r.raw();
        if (v == null) {
            return c.isPrimitive() ? primitiveDefault(c) : (c == Optional.class ? Optional.empty() : null);
        }
        if (c == Object.class) {
            return v;
        }
        Object s = scalar(v, c);
        if (s != NO_SCALAR) {
            return s;
        }
        if (c.isArray()) {
            return array(v, r, c);
        }
        if (c == Optional.class) {
            return Optional.ofNullable(fromJson(v, r.parameter(Optional.class, 0)));
        }
        if (Map.class.isAssignableFrom(c)) {
            return map(v, r, c);
        }
        if (Collection.class.isAssignableFrom(c) || c == Iterable.class) {
            return collection(v, r, c);
        }
        return bean(v, r, c);
    }

    private static final Object NO_SCALAR = new Object();

    /** Converts v to a scalar type c, or returns NO_SCALAR when c is not one. */
    private static Object scalar(Object v, Class<?> c) {
        if (c == String.class || c == CharSequence.class) {
            if (v instanceof String) {
                return v;
            }
            if (v instanceof Number || v instanceof Boolean) {
                return v.toString();
            }
            throw mismatch(v, c);
        }
        if (c == Integer.class || c == int.class) {
            Number n = number(v, c);
            return n == null ? (c.isPrimitive() ? 0 : null) : (Object) (int) integral(n, c, Integer.MIN_VALUE, Integer.MAX_VALUE);
        }
        if (c == Long.class || c == long.class) {
            Number n = number(v, c);
            return n == null ? (c.isPrimitive() ? 0L : null) : (Object) integral(n, c, Long.MIN_VALUE, Long.MAX_VALUE);
        }
        if (c == Double.class || c == double.class) {
            Number n = number(v, c);
            return n == null ? (c.isPrimitive() ? 0d : null) : (Object) n.doubleValue();
        }
        if (c == Float.class || c == float.class) {
            Number n = number(v, c);
            return n == null ? (c.isPrimitive() ? 0f : null) : (Object) n.floatValue();
        }
        if (c == Short.class || c == short.class) {
            Number n = number(v, c);
            return n == null ? (c.isPrimitive() ? (short) 0 : null) : (Object) (short) integral(n, c, Short.MIN_VALUE, Short.MAX_VALUE);
        }
        if (c == Byte.class || c == byte.class) {
            Number n = number(v, c);
            return n == null ? (c.isPrimitive() ? (byte) 0 : null) : (Object) (byte) integral(n, c, Byte.MIN_VALUE, 255);
        }
        if (c == Boolean.class || c == boolean.class) {
            if (v instanceof Boolean) {
                return v;
            }
            if (v instanceof String) {
                String s = ((String) v).trim();
                if (s.equalsIgnoreCase("true")) {
                    return Boolean.TRUE;
                }
                if (s.equalsIgnoreCase("false")) {
                    return Boolean.FALSE;
                }
                if (s.isEmpty()) {
                    return c.isPrimitive() ? Boolean.FALSE : null;
                }
            }
            if (v instanceof Integer || v instanceof Long) {
                return ((Number) v).longValue() != 0;
            }
            throw mismatch(v, c);
        }
        if (c == Character.class || c == char.class) {
            if (v instanceof String && ((String) v).length() == 1) {
                return ((String) v).charAt(0);
            }
            if (v instanceof Integer) {
                return (char) (int) (Integer) v;
            }
            throw mismatch(v, c);
        }
        if (c == BigDecimal.class) {
            Number n = number(v, c);
            if (n == null || n instanceof BigDecimal) {
                return n;
            }
            if (n instanceof BigInteger) {
                return new BigDecimal((BigInteger) n);
            }
            if (n instanceof Double) {
                return BigDecimal.valueOf((Double) n);
            }
            return BigDecimal.valueOf(n.longValue());
        }
        if (c == BigInteger.class) {
            Number n = number(v, c);
            if (n == null || n instanceof BigInteger) {
                return n;
            }
            if (n instanceof Double || n instanceof BigDecimal) {
                return new BigDecimal(n.toString()).toBigInteger();
            }
            return BigInteger.valueOf(n.longValue());
        }
        if (c == Number.class) {
            if (v instanceof Number) {
                return v;
            }
            return number(v, c);
        }
        if (c.isEnum()) {
            return enumValue(v, c);
        }
        if (c == Date.class) {
            if (v instanceof Number) {
                return new Date(((Number) v).longValue());
            }
            if (v instanceof String) {
                return Date.from(java.time.Instant.parse((String) v));
            }
            throw mismatch(v, c);
        }
        if (c.getName().startsWith("java.time.")) {
            return time(v, c);
        }
        if (c == java.util.UUID.class && v instanceof String) {
            return java.util.UUID.fromString((String) v);
        }
        return NO_SCALAR;
    }

    /** The number in v (a JSON number or a numeric string); null for an empty string. */
    private static Number number(Object v, Class<?> c) {
        if (v instanceof Number) {
            return (Number) v;
        }
        if (v instanceof String) {
            String s = ((String) v).trim();
            if (s.isEmpty()) {
                return null;
            }
            try {
                Object n = Json.parse(s);
                if (n instanceof Number) {
                    return (Number) n;
                }
            } catch (Json.SyntaxException e) {
                // fall through to the mismatch below
            }
            throw new MappingException("Cannot deserialize value of type `" + c.getName() + "` from String \"" + v + "\": not a valid number");
        }
        throw mismatch(v, c);
    }

    /** n as a long within [min, max]; fractions are truncated as Lambda's serializer does. */
    private static long integral(Number n, Class<?> c, long min, long max) {
        if (n instanceof Double || n instanceof BigDecimal || n instanceof Float) {
            double d = n.doubleValue();
            if (Double.isNaN(d) || d < min || d > max) {
                throw new MappingException("Numeric value (" + n + ") out of range of " + c.getName());
            }
            return (long) d;
        }
        if (n instanceof BigInteger) {
            BigInteger b = (BigInteger) n;
            if (b.bitLength() >= 64) {
                throw new MappingException("Numeric value (" + n + ") out of range of " + c.getName());
            }
        }
        long l = n.longValue();
        if (l < min || l > max) {
            throw new MappingException("Numeric value (" + n + ") out of range of " + c.getName());
        }
        return l;
    }

    @SuppressWarnings({"unchecked", "rawtypes"})
    private static Object enumValue(Object v, Class<?> c) {
        Object[] constants = c.getEnumConstants();
        if (v instanceof String) {
            for (Object e : constants) {
                if (((Enum) e).name().equals(v)) {
                    return e;
                }
            }
            return null; // unknown values read as null
        }
        if (v instanceof Integer) {
            int i = (Integer) v;
            if (i >= 0 && i < constants.length) {
                return constants[i];
            }
            return null;
        }
        throw mismatch(v, c);
    }

    /** java.time values from their ISO-8601 text, Instant also from epoch seconds. */
    private static Object time(Object v, Class<?> c) {
        if (c == java.time.Instant.class && v instanceof Number) {
            BigDecimal secs = v instanceof Double ? BigDecimal.valueOf((Double) v) : new BigDecimal(v.toString());
            long s = secs.longValue();
            int nanos = secs.subtract(BigDecimal.valueOf(s)).movePointRight(9).intValue();
            return java.time.Instant.ofEpochSecond(s, nanos);
        }
        if (!(v instanceof String)) {
            throw mismatch(v, c);
        }
        try {
            Method parse = c.getMethod("parse", CharSequence.class);
            return parse.invoke(null, v);
        } catch (NoSuchMethodException | IllegalAccessException e) {
            return NO_SCALAR;
        } catch (InvocationTargetException e) {
            throw new MappingException("Cannot deserialize value of type `" + c.getName() + "` from String \"" + v + "\"", e.getCause());
        }
    }

    private static Object array(Object v, Types r, Class<?> c) {
        Class<?> comp = c.getComponentType();
        if (comp == byte.class && v instanceof String) {
            return Base64.getDecoder().decode((String) v);
        }
        if (comp == char.class && v instanceof String) {
            return ((String) v).toCharArray();
        }
        Types ct = r.type instanceof GenericArrayType ? r.with(((GenericArrayType) r.type).getGenericComponentType()) : Types.of(comp);
        List<?> l = asList(v);
        if (l == null) {
            return null;
        }
        Object a = Array.newInstance(comp, l.size());
        for (int i = 0; i < l.size(); i++) {
            Array.set(a, i, fromJson(l.get(i), ct));
        }
        return a;
    }

    /** v as a list: a single value becomes a one-element list, "" null. */
    private static List<?> asList(Object v) {
        if (v instanceof List) {
            return (List<?>) v;
        }
        if ("".equals(v)) {
            return null;
        }
        List<Object> one = new ArrayList<>(1);
        one.add(v);
        return one;
    }

    @SuppressWarnings({"unchecked", "rawtypes"})
    private static Object collection(Object v, Types r, Class<?> c) {
        List<?> l = asList(v);
        if (l == null) {
            return null;
        }
        Types et = c == Iterable.class ? r.parameter(Iterable.class, 0) : r.parameter(Collection.class, 0);
        Collection<Object> out;
        if (EnumSet.class.isAssignableFrom(c)) {
            out = (Collection) EnumSet.noneOf((Class) et.raw());
        } else {
            out = (Collection<Object>) newContainer(c);
        }
        for (Object o : l) {
            out.add(fromJson(o, et));
        }
        return out;
    }

    private static Object newContainer(Class<?> c) {
        if (c.isInterface() || Modifier.isAbstract(c.getModifiers())) {
            if (Map.class.isAssignableFrom(c)) {
                if (ConcurrentMap.class.isAssignableFrom(c)) {
                    return new ConcurrentHashMap<>();
                }
                if (SortedMap.class.isAssignableFrom(c) || NavigableMap.class.isAssignableFrom(c)) {
                    return new TreeMap<>();
                }
                return new LinkedHashMap<>();
            }
            if (SortedSet.class.isAssignableFrom(c) || NavigableSet.class.isAssignableFrom(c)) {
                return new TreeSet<>();
            }
            if (Set.class.isAssignableFrom(c)) {
                return new LinkedHashSet<>();
            }
            if (Queue.class.isAssignableFrom(c) && !List.class.isAssignableFrom(c)) {
                return new ArrayDeque<>();
            }
            return new ArrayList<>();
        }
        try {
            Constructor<?> k = c.getDeclaredConstructor();
            k.trySetAccessible();
            return k.newInstance();
        } catch (ReflectiveOperationException e) {
            throw new MappingException("Cannot construct instance of `" + c.getName() + "`: no zero-argument constructor", e);
        }
    }

    @SuppressWarnings("unchecked")
    private static Object map(Object v, Types r, Class<?> c) {
        if ("".equals(v) || (v instanceof List && ((List<?>) v).isEmpty())) {
            return null;
        }
        if (!(v instanceof Map)) {
            throw mismatch(v, c);
        }
        Types kt = r.parameter(Map.class, 0);
        Types vt = r.parameter(Map.class, 1);
        Map<Object, Object> out = (Map<Object, Object>) newContainer(c);
        for (Map.Entry<String, Object> e : ((Map<String, Object>) v).entrySet()) {
            out.put(key(e.getKey(), kt), fromJson(e.getValue(), vt));
        }
        return out;
    }

    private static Object key(String k, Types kt) {
        Class<?> c = kt.raw();
        if (c == Object.class || c == String.class || c == CharSequence.class) {
            return k;
        }
        Object s = scalar(k, c);
        if (s == NO_SCALAR) {
            throw new MappingException("Cannot use type `" + c.getName() + "` as a map key");
        }
        return s;
    }

    private static Object bean(Object v, Types r, Class<?> c) {
        if ("".equals(v)) {
            return null;
        }
        if (v instanceof List) {
            List<?> l = (List<?>) v;
            if (l.isEmpty()) {
                return null;
            }
            if (l.size() == 1) {
                return fromJson(l.get(0), r);
            }
        }
        if (!(v instanceof Map)) {
            throw mismatch(v, c);
        }
        @SuppressWarnings("unchecked")
        Map<String, Object> m = (Map<String, Object>) v;
        Bean b = Bean.of(c);
        if (b.components != null) {
            return record(m, r, c, b);
        }
        if (b.ctor == null) {
            String why = c.isInterface() || Modifier.isAbstract(c.getModifiers())
                    ? "abstract types either need to be mapped to concrete types"
                    : "no zero-argument constructor";
            throw new MappingException("Cannot construct instance of `" + c.getName() + "`: " + why);
        }
        Object o;
        try {
            o = b.ctor.newInstance();
        } catch (InvocationTargetException e) {
            throw new MappingException("Cannot construct instance of `" + c.getName() + "`", e.getCause());
        } catch (ReflectiveOperationException e) {
            throw new MappingException("Cannot construct instance of `" + c.getName() + "`", e);
        }
        Map<TypeVariable<?>, Types> env = null;
        for (Map.Entry<String, Object> e : m.entrySet()) {
            Bean.Setter s = b.setters.get(e.getKey());
            if (s == null) {
                continue; // unknown properties are ignored
            }
            Types pt;
            if (s.type instanceof Class) {
                pt = Types.of(s.type);
            } else {
                if (env == null) {
                    env = r.type instanceof Class ? b.env() : Types.hierarchy(r);
                }
                pt = new Types(s.type, env);
            }
            Object val;
            try {
                val = fromJson(e.getValue(), pt);
            } catch (MappingException ex) {
                throw new MappingException(ex.getMessage() + " (through reference chain: " + c.getName() + "[\"" + e.getKey() + "\"])", ex.getCause());
            }
            s.set(o, val);
        }
        return o;
    }

    private static Object record(Map<String, Object> m, Types r, Class<?> c, Bean b) {
        Object[] args = new Object[b.components.length];
        Map<TypeVariable<?>, Types> env = Types.hierarchy(r);
        for (int i = 0; i < args.length; i++) {
            RecordComponent rc = b.components[i];
            args[i] = fromJson(m.get(rc.getName()), new Types(rc.getGenericType(), env));
        }
        try {
            return b.ctor.newInstance(args);
        } catch (InvocationTargetException e) {
            throw new MappingException("Cannot construct instance of `" + c.getName() + "`", e.getCause());
        } catch (ReflectiveOperationException e) {
            throw new MappingException("Cannot construct instance of `" + c.getName() + "`", e);
        }
    }

    private static MappingException mismatch(Object v, Class<?> c) {
        String what = v instanceof Map ? "Object value" : v instanceof List ? "Array value"
                : v instanceof String ? "String value" : v instanceof Boolean ? "Boolean value" : "Number value";
        return new MappingException("Cannot deserialize value of type `" + c.getTypeName() + "` from " + what);
    }

    private static Object primitiveDefault(Class<?> c) {
        if (c == boolean.class) {
            return false;
        }
        if (c == char.class) {
            return '\0';
        }
        return scalar(0, c);
    }

    // ---------------------------------------------------------------- writing

    /** Nesting deeper than this is taken for a cycle. */
    private static final int MAX_DEPTH = 1000;

    /** Renders a Java object as JSON. */
    static String toJson(Object v) {
        StringBuilder sb = new StringBuilder();
        write(v, sb, 0);
        return sb.toString();
    }

    private static void write(Object v, StringBuilder sb, int depth) {
        if (depth > MAX_DEPTH) {
            throw new MappingException("Direct self-reference or nesting deeper than " + MAX_DEPTH + " leading to cycle");
        }
        if (v == null) {
            sb.append("null");
        } else if (v instanceof String) {
            Json.quote((String) v, sb);
        } else if (v instanceof Boolean) {
            sb.append(v.toString());
        } else if (v instanceof Number) {
            Json.number((Number) v, sb);
        } else if (v instanceof Character || v instanceof CharSequence) {
            Json.quote(v.toString(), sb);
        } else if (v instanceof Enum) {
            Json.quote(((Enum<?>) v).name(), sb);
        } else if (v instanceof Map) {
            sb.append('{');
            boolean first = true;
            for (Map.Entry<?, ?> e : ((Map<?, ?>) v).entrySet()) {
                if (!first) {
                    sb.append(',');
                }
                first = false;
                Object k = e.getKey();
                Json.quote(k instanceof Enum ? ((Enum<?>) k).name() : String.valueOf(k), sb);
                sb.append(':');
                write(e.getValue(), sb, depth + 1);
            }
            sb.append('}');
        } else if (v instanceof Iterable) {
            writeAll(((Iterable<?>) v).iterator(), sb, depth);
        } else if (v.getClass().isArray()) {
            writeArray(v, sb, depth);
        } else if (v instanceof Optional) {
            write(((Optional<?>) v).orElse(null), sb, depth);
        } else if (v instanceof Date) {
            sb.append(((Date) v).getTime());
        } else if (v instanceof Calendar) {
            sb.append(((Calendar) v).getTimeInMillis());
        } else if (isStringLike(v.getClass())) {
            Json.quote(v.toString(), sb);
        } else {
            writeBean(v, sb, depth);
        }
    }

    /** Classes Lambda's serializer writes as their toString(). */
    private static boolean isStringLike(Class<?> c) {
        String n = c.getName();
        return n.startsWith("java.time.") || c == java.util.UUID.class || c == java.net.URI.class
                || c == java.net.URL.class || c == java.util.Locale.class || c == java.util.Currency.class
                || c == java.util.regex.Pattern.class || c == java.io.File.class || c == Class.class
                || java.nio.file.Path.class.isAssignableFrom(c) || java.nio.charset.Charset.class.isAssignableFrom(c);
    }

    private static void writeAll(Iterator<?> it, StringBuilder sb, int depth) {
        sb.append('[');
        boolean first = true;
        while (it.hasNext()) {
            if (!first) {
                sb.append(',');
            }
            first = false;
            write(it.next(), sb, depth + 1);
        }
        sb.append(']');
    }

    private static void writeArray(Object a, StringBuilder sb, int depth) {
        if (a instanceof byte[]) {
            sb.append('"').append(Base64.getEncoder().encodeToString((byte[]) a)).append('"');
            return;
        }
        if (a instanceof char[]) {
            Json.quote(new String((char[]) a), sb);
            return;
        }
        sb.append('[');
        int n = Array.getLength(a);
        for (int i = 0; i < n; i++) {
            if (i > 0) {
                sb.append(',');
            }
            write(Array.get(a, i), sb, depth + 1);
        }
        sb.append(']');
    }

    private static void writeBean(Object o, StringBuilder sb, int depth) {
        Bean b = Bean.of(o.getClass());
        sb.append('{');
        boolean first = true;
        for (Bean.Getter g : b.getters) {
            Object val = g.get(o);
            if (val == null) {
                continue; // null properties are left out
            }
            if (!first) {
                sb.append(',');
            }
            first = false;
            Json.quote(g.name, sb);
            sb.append(':');
            write(val, sb, depth + 1);
        }
        sb.append('}');
    }
}
