package icebox.runtime;

import java.math.BigDecimal;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A small JSON reader and writer for the runtime's own needs and for mapping
 * events: objects become LinkedHashMap (key order kept), arrays ArrayList,
 * integers Integer, Long or BigInteger (the smallest that fits), other
 * numbers Double, and true/false/null Boolean and null, as Lambda's Jackson
 * setup produces for untyped targets.
 */
final class Json {

    /** Nesting deeper than this is refused rather than overflowing the stack. */
    static final int MAX_DEPTH = 1000;

    private Json() {
    }

    /** A malformed document, with the offset where reading stopped. */
    static final class SyntaxException extends RuntimeException {
        private static final long serialVersionUID = 1L;

        SyntaxException(String msg, int pos) {
            super(msg + " at offset " + pos);
        }
    }

    /** Parses one JSON value; anything but whitespace after it is an error. */
    static Object parse(String s) {
        Reader r = new Reader(s);
        r.skipSpace();
        Object v = r.value(0);
        r.skipSpace();
        if (r.pos != s.length()) {
            throw new SyntaxException("unexpected data after the JSON value", r.pos);
        }
        return v;
    }

    private static final class Reader {
        private final String s;
        private int pos;

        Reader(String s) {
            this.s = s;
        }

        void skipSpace() {
            while (pos < s.length()) {
                char c = s.charAt(pos);
                if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
                    return;
                }
                pos++;
            }
        }

        Object value(int depth) {
            if (pos >= s.length()) {
                throw new SyntaxException("unexpected end of input", pos);
            }
            char c = s.charAt(pos);
            switch (c) {
                case '{':
                    return object(depth + 1);
                case '[':
                    return array(depth + 1);
                case '"':
                    return string();
                case 't':
                    literal("true");
                    return Boolean.TRUE;
                case 'f':
                    literal("false");
                    return Boolean.FALSE;
                case 'n':
                    literal("null");
                    return null;
                case 'N':
                    literal("NaN");
                    return Double.NaN;
                case 'I':
                    literal("Infinity");
                    return Double.POSITIVE_INFINITY;
                default:
                    if (c == '-' || (c >= '0' && c <= '9')) {
                        return number();
                    }
                    throw new SyntaxException("unexpected character '" + c + "'", pos);
            }
        }

        private void literal(String word) {
            if (!s.startsWith(word, pos)) {
                throw new SyntaxException("invalid literal", pos);
            }
            pos += word.length();
        }

        private Map<String, Object> object(int depth) {
            if (depth > MAX_DEPTH) {
                throw new SyntaxException("nesting deeper than " + MAX_DEPTH, pos);
            }
            pos++; // {
            Map<String, Object> m = new LinkedHashMap<>();
            skipSpace();
            if (pos < s.length() && s.charAt(pos) == '}') {
                pos++;
                return m;
            }
            for (;;) {
                skipSpace();
                if (pos >= s.length() || s.charAt(pos) != '"') {
                    throw new SyntaxException("expected a string key", pos);
                }
                String key = string();
                skipSpace();
                expect(':');
                skipSpace();
                m.put(key, value(depth));
                skipSpace();
                if (pos >= s.length()) {
                    throw new SyntaxException("unterminated object", pos);
                }
                char c = s.charAt(pos++);
                if (c == '}') {
                    return m;
                }
                if (c != ',') {
                    throw new SyntaxException("expected ',' or '}'", pos - 1);
                }
            }
        }

        private List<Object> array(int depth) {
            if (depth > MAX_DEPTH) {
                throw new SyntaxException("nesting deeper than " + MAX_DEPTH, pos);
            }
            pos++; // [
            List<Object> l = new ArrayList<>();
            skipSpace();
            if (pos < s.length() && s.charAt(pos) == ']') {
                pos++;
                return l;
            }
            for (;;) {
                skipSpace();
                l.add(value(depth));
                skipSpace();
                if (pos >= s.length()) {
                    throw new SyntaxException("unterminated array", pos);
                }
                char c = s.charAt(pos++);
                if (c == ']') {
                    return l;
                }
                if (c != ',') {
                    throw new SyntaxException("expected ',' or ']'", pos - 1);
                }
            }
        }

        private void expect(char c) {
            if (pos >= s.length() || s.charAt(pos) != c) {
                throw new SyntaxException("expected '" + c + "'", pos);
            }
            pos++;
        }

        private String string() {
            pos++; // opening quote
            int start = pos;
            // Fast path: no escapes.
            while (pos < s.length()) {
                char c = s.charAt(pos);
                if (c == '"') {
                    return s.substring(start, pos++);
                }
                if (c == '\\') {
                    break;
                }
                pos++;
            }
            StringBuilder sb = new StringBuilder(s.length() - start);
            sb.append(s, start, pos);
            while (pos < s.length()) {
                char c = s.charAt(pos++);
                if (c == '"') {
                    return sb.toString();
                }
                if (c != '\\') {
                    sb.append(c);
                    continue;
                }
                if (pos >= s.length()) {
                    break;
                }
                char e = s.charAt(pos++);
                switch (e) {
                    case '"':
                    case '\\':
                    case '/':
                        sb.append(e);
                        break;
                    case 'b':
                        sb.append('\b');
                        break;
                    case 'f':
                        sb.append('\f');
                        break;
                    case 'n':
                        sb.append('\n');
                        break;
                    case 'r':
                        sb.append('\r');
                        break;
                    case 't':
                        sb.append('\t');
                        break;
                    case 'u':
                        if (pos + 4 > s.length()) {
                            throw new SyntaxException("truncated \\u escape", pos);
                        }
                        int cp = 0;
                        for (int i = 0; i < 4; i++) {
                            int d = Character.digit(s.charAt(pos + i), 16);
                            if (d < 0) {
                                throw new SyntaxException("invalid \\u escape", pos);
                            }
                            cp = cp * 16 + d;
                        }
                        pos += 4;
                        sb.append((char) cp);
                        break;
                    default:
                        throw new SyntaxException("invalid escape '\\" + e + "'", pos - 1);
                }
            }
            throw new SyntaxException("unterminated string", start - 1);
        }

        private Object number() {
            int start = pos;
            boolean integral = true;
            if (s.charAt(pos) == '-') {
                pos++;
                if (s.startsWith("Infinity", pos)) {
                    pos += "Infinity".length();
                    return Double.NEGATIVE_INFINITY;
                }
            }
            int digits = digits();
            if (digits == 0) {
                throw new SyntaxException("invalid number", start);
            }
            if (pos < s.length() && s.charAt(pos) == '.') {
                integral = false;
                pos++;
                if (digits() == 0) {
                    throw new SyntaxException("invalid number", start);
                }
            }
            if (pos < s.length() && (s.charAt(pos) == 'e' || s.charAt(pos) == 'E')) {
                integral = false;
                pos++;
                if (pos < s.length() && (s.charAt(pos) == '+' || s.charAt(pos) == '-')) {
                    pos++;
                }
                if (digits() == 0) {
                    throw new SyntaxException("invalid number", start);
                }
            }
            String text = s.substring(start, pos);
            if (!integral) {
                return Double.parseDouble(text);
            }
            int len = text.length() - (text.charAt(0) == '-' ? 1 : 0);
            if (len <= 9) {
                return Integer.parseInt(text);
            }
            if (len <= 18) {
                long l = Long.parseLong(text);
                if (l >= Integer.MIN_VALUE && l <= Integer.MAX_VALUE) {
                    return (int) l;
                }
                return l;
            }
            BigInteger b = new BigInteger(text);
            if (b.bitLength() < 64) {
                long l = b.longValue();
                if (l >= Integer.MIN_VALUE && l <= Integer.MAX_VALUE) {
                    return (int) l;
                }
                return l;
            }
            return b;
        }

        private int digits() {
            int n = 0;
            while (pos < s.length() && s.charAt(pos) >= '0' && s.charAt(pos) <= '9') {
                pos++;
                n++;
            }
            return n;
        }
    }

    /** Renders a JSON tree (maps, lists, strings, numbers, booleans, null). */
    static String write(Object v) {
        StringBuilder sb = new StringBuilder();
        writeValue(v, sb);
        return sb.toString();
    }

    @SuppressWarnings("unchecked")
    static void writeValue(Object v, StringBuilder sb) {
        if (v == null) {
            sb.append("null");
        } else if (v instanceof String) {
            quote((String) v, sb);
        } else if (v instanceof Boolean) {
            sb.append(v.toString());
        } else if (v instanceof Number) {
            number((Number) v, sb);
        } else if (v instanceof Map) {
            sb.append('{');
            boolean first = true;
            for (Map.Entry<Object, Object> e : ((Map<Object, Object>) v).entrySet()) {
                if (!first) {
                    sb.append(',');
                }
                first = false;
                quote(String.valueOf(e.getKey()), sb);
                sb.append(':');
                writeValue(e.getValue(), sb);
            }
            sb.append('}');
        } else if (v instanceof Iterable) {
            sb.append('[');
            boolean first = true;
            for (Object o : (Iterable<Object>) v) {
                if (!first) {
                    sb.append(',');
                }
                first = false;
                writeValue(o, sb);
            }
            sb.append(']');
        } else {
            quote(v.toString(), sb);
        }
    }

    /** Writes a number as JSON; NaN and the infinities become strings as Jackson writes them. */
    static void number(Number n, StringBuilder sb) {
        if (n instanceof Double || n instanceof Float) {
            double d = n.doubleValue();
            if (Double.isNaN(d) || Double.isInfinite(d)) {
                sb.append('"').append(n.toString()).append('"');
                return;
            }
        }
        if (n instanceof BigDecimal) {
            sb.append(((BigDecimal) n).toString());
            return;
        }
        sb.append(n.toString());
    }

    private static final char[] HEX = "0123456789abcdef".toCharArray();

    /** Writes s as a JSON string: quotes, backslashes and control characters escaped. */
    static void quote(String s, StringBuilder sb) {
        sb.append('"');
        int last = 0;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c >= 0x20 && c != '"' && c != '\\') {
                continue;
            }
            sb.append(s, last, i);
            last = i + 1;
            switch (c) {
                case '"':
                    sb.append("\\\"");
                    break;
                case '\\':
                    sb.append("\\\\");
                    break;
                case '\n':
                    sb.append("\\n");
                    break;
                case '\r':
                    sb.append("\\r");
                    break;
                case '\t':
                    sb.append("\\t");
                    break;
                case '\b':
                    sb.append("\\b");
                    break;
                case '\f':
                    sb.append("\\f");
                    break;
                default:
                    sb.append("\\u00").append(HEX[c >> 4]).append(HEX[c & 0xf]);
            }
        }
        sb.append(s, last, s.length());
        sb.append('"');
    }
}
