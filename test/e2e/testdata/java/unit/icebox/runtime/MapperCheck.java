package icebox.runtime;

import java.lang.reflect.Type;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;

/**
 * Checks the runtime's JSON reader/writer and object mapping without a
 * sandbox. Run with the runtime's classes on the class path; prints each
 * failure and exits 1 if there was one.
 */
public final class MapperCheck {
    private static int failures;

    public static void main(String[] args) throws Exception {
        json();
        fuzz();
        mapping();
        writing();
        if (failures > 0) {
            System.out.println(failures + " failure(s)");
            System.exit(1);
        }
        System.out.println("ok");
    }

    static void eq(String what, Object got, Object want) {
        if (got == null ? want != null : !got.equals(want)) {
            failures++;
            System.out.println("FAIL " + what + ": got " + got + " (" + (got == null ? "null" : got.getClass().getName()) + "), want " + want);
        }
    }

    static void fails(String what, Runnable r) {
        try {
            r.run();
        } catch (RuntimeException e) {
            return;
        }
        failures++;
        System.out.println("FAIL " + what + ": no error");
    }

    static void json() {
        eq("int", Json.parse("42"), 42);
        eq("negative", Json.parse("-7"), -7);
        eq("long", Json.parse("12345678901"), 12345678901L);
        eq("bigint", Json.parse("123456789012345678901234567890"), new BigInteger("123456789012345678901234567890"));
        eq("min long", Json.parse("-9223372036854775808"), Long.MIN_VALUE);
        eq("double", Json.parse("1.5e3"), 1500.0);
        eq("fraction", Json.parse("-0.25"), -0.25);
        eq("escapes", Json.parse("\"a\\\"b\\\\c\\/d\\n\\t\\u00e9\\ud83d\\ude00\""), "a\"b\\c/d\n\té\ud83d\ude00");
        eq("nested", Json.write(Json.parse(" {\"a\" : [1, {\"b\": null}, true, false, \"x\"], \"c\": {} , \"d\": []} ")),
                "{\"a\":[1,{\"b\":null},true,false,\"x\"],\"c\":{},\"d\":[]}");
        eq("order kept", Json.write(Json.parse("{\"z\":1,\"a\":2,\"m\":3}")), "{\"z\":1,\"a\":2,\"m\":3}");
        eq("write escapes", Json.write("q\"\\\n\u0001é/"), "\"q\\\"\\\\\\n\\u0001é/\"");
        eq("write NaN", Json.write(Double.NaN), "\"NaN\"");
        for (String bad : new String[] {"", "{", "[1,]", "{\"a\":1,}", "{a:1}", "\"abc", "tru", "1 2", "[1 2]", "{\"a\" 1}", "\"\\x\"", "-", "1.", "1e", "\"\\u12\""}) {
            fails("parse " + bad, () -> Json.parse(bad));
        }
        StringBuilder deep = new StringBuilder();
        for (int i = 0; i < 5000; i++) {
            deep.append('[');
        }
        fails("too deep", () -> Json.parse(deep.toString()));
    }

    /**
     * Random trees survive a write and a parse; random mutations of valid
     * documents either parse or fail with SyntaxException, never anything else.
     */
    private static final String MUTATIONS = "{}[]\",:0-.eE\\u tfn";

    static void fuzz() {
        java.util.Random rnd = new java.util.Random(42);
        for (int i = 0; i < 2000; i++) {
            Object tree = randomTree(rnd, 0);
            String text = Json.write(tree);
            Object back;
            try {
                back = Json.parse(text);
            } catch (RuntimeException e) {
                failures++;
                System.out.println("FAIL round trip of " + text + ": " + e);
                continue;
            }
            if (!Json.write(back).equals(text)) {
                failures++;
                System.out.println("FAIL round trip: " + text + " became " + Json.write(back));
            }
            char[] c = text.toCharArray();
            for (int j = 0; j < 3 && c.length > 0; j++) {
                c[rnd.nextInt(c.length)] = MUTATIONS.charAt(rnd.nextInt(MUTATIONS.length()));
            }
            String mutated = rnd.nextBoolean() ? new String(c) : new String(c, 0, rnd.nextInt(c.length + 1));
            try {
                Json.parse(mutated);
            } catch (Json.SyntaxException e) {
                // expected for most
            } catch (RuntimeException e) {
                failures++;
                System.out.println("FAIL parse of " + mutated + " threw " + e);
            }
        }
    }

    static Object randomTree(java.util.Random rnd, int depth) {
        switch (depth > 4 ? rnd.nextInt(6) : rnd.nextInt(8)) {
            case 0:
                return null;
            case 1:
                return rnd.nextBoolean();
            case 2:
                return rnd.nextInt();
            case 3:
                return rnd.nextLong();
            case 4:
                return rnd.nextDouble() * Math.pow(10, rnd.nextInt(40) - 20);
            case 5: {
                StringBuilder sb = new StringBuilder();
                for (int i = rnd.nextInt(8); i > 0; i--) {
                    sb.append((char) (rnd.nextBoolean() ? rnd.nextInt(128) : rnd.nextInt(0xD800)));
                }
                return sb.toString();
            }
            case 6: {
                List<Object> l = new ArrayList<>();
                for (int i = rnd.nextInt(4); i > 0; i--) {
                    l.add(randomTree(rnd, depth + 1));
                }
                return l;
            }
            default: {
                Map<String, Object> m = new LinkedHashMap<>();
                for (int i = rnd.nextInt(4); i > 0; i--) {
                    m.put("k" + rnd.nextInt(100), randomTree(rnd, depth + 1));
                }
                return m;
            }
        }
    }

    public static class Base<T> {
        private T item;
        public List<T> more;

        public T getItem() {
            return item;
        }

        public void setItem(T item) {
            this.item = item;
        }
    }

    public static class OrderBox extends Base<Order> {
    }

    public static class Order {
        private String id;
        private int qty;
        private Kind kind;
        public Map<Integer, Boolean> flags;
        private byte[] blob;
        private String URL;
        private Optional<String> note;
        private Set<Integer> set;

        public String getId() {
            return id;
        }

        public void setId(String id) {
            this.id = id;
        }

        public int getQty() {
            return qty;
        }

        void setQty(int qty) { // package-private setters are used too
            this.qty = qty;
        }

        public Kind getKind() {
            return kind;
        }

        public void setKind(Kind kind) {
            this.kind = kind;
        }

        public byte[] getBlob() {
            return blob;
        }

        public void setBlob(byte[] blob) {
            this.blob = blob;
        }

        public String getURL() {
            return URL;
        }

        public void setURL(String u) {
            URL = u;
        }

        public Optional<String> getNote() {
            return note;
        }

        public void setNote(Optional<String> note) {
            this.note = note;
        }

        public Set<Integer> getSet() {
            return set;
        }

        public void setSet(Set<Integer> set) {
            this.set = set;
        }
    }

    public enum Kind { SMALL, LARGE }

    public record Point(int x, int y, List<String> labels) {
    }

    public static class Holder {
        public List<Map<String, Point>> points;
        public Point[] array;
        public int[] ints;
        public List<Object> raw;
        public BigDecimal money;
        public long big;
        public Double maybe;
        public char letter;
    }

    static Object read(String json, Type t) {
        return Mapper.fromJson(Json.parse(json), Types.of(t));
    }

    static void mapping() throws Exception {
        OrderBox box = (OrderBox) read("{\"item\":{\"id\":\"o1\",\"qty\":\"3\",\"kind\":\"LARGE\",\"flags\":{\"1\":true,\"2\":0},"
                + "\"blob\":\"aGk=\",\"URL\":\"u\",\"note\":\"n\",\"set\":[3,1,3],\"unknown\":[1,2]},"
                + "\"more\":{\"id\":\"single\"}}", OrderBox.class);
        Order o = box.getItem();
        eq("generic superclass item", o.getClass(), Order.class);
        eq("id", o.getId(), "o1");
        eq("qty from string", o.getQty(), 3);
        eq("enum", o.getKind(), Kind.LARGE);
        eq("int keys", o.flags.keySet().iterator().next(), 1);
        eq("boolean from 0", o.flags.get(2), false);
        eq("base64", new String(o.getBlob()), "hi");
        eq("URL property", o.getURL(), "u");
        eq("optional", o.getNote(), Optional.of("n"));
        eq("set", o.getSet(), new TreeSet<>(Arrays.asList(1, 3)));
        eq("single value as array", box.more.get(0).getId(), "single");

        Holder h = (Holder) read("{\"points\":[{\"a\":{\"x\":1,\"y\":2,\"labels\":[\"l\"]}}],\"array\":[{\"x\":3}],\"ints\":[1,2],"
                + "\"raw\":[1,\"s\",{\"k\":[]}],\"money\":0.1,\"big\":12345678901,\"maybe\":null,\"letter\":\"z\"}", Holder.class);
        eq("record in map in list", h.points.get(0).get("a"), new Point(1, 2, List.of("l")));
        eq("record array, missing component", h.array[0], new Point(3, 0, null));
        eq("int array", Arrays.toString(h.ints), "[1, 2]");
        eq("raw list", h.raw.get(2), Map.of("k", new ArrayList<>()));
        eq("big decimal", h.money, new BigDecimal("0.1"));
        eq("long", h.big, 12345678901L);
        eq("null boxed", h.maybe, null);
        eq("char", h.letter, 'z');

        eq("string", read("\"s\"", String.class), "s");
        eq("number as string", read("12", String.class), "12");
        eq("integer truncates", read("2.9", Integer.class), 2);
        eq("null primitive", read("null", int.class), 0);
        eq("empty string bean", read("\"\"", Order.class), null);
        eq("unknown enum", read("\"HUGE\"", Kind.class), null);
        eq("list of maps", Json.write(read("[{\"a\":1}]", List.class)), "[{\"a\":1}]");
        fails("int overflow", () -> read("3000000000", Integer.class));
        fails("object as string", () -> read("{}", String.class));
        fails("string as bean", () -> read("\"x\"", Order.class));
        fails("array as int", () -> read("[1,2]", int.class));
        fails("not a number", () -> read("\"abc\"", Integer.class));
        fails("abstract", () -> read("{}", Runnable.class));
    }

    public static class Out {
        private final String name = "n";
        public int count = 2;
        public String none;
        private final List<Object> items = new ArrayList<>(Arrays.asList(1, "two", null, Kind.SMALL));

        public String getName() {
            return name;
        }

        public List<Object> getItems() {
            return items;
        }

        public boolean isActive() {
            return true;
        }

        public Boolean isBoxed() { // not a getter: "is" needs a primitive boolean
            return true;
        }

        public String getNull() {
            return null;
        }

        public static String getStatic() {
            return "static";
        }
    }

    public static class Cycle {
        public Cycle self = this;
    }

    static void writing() {
        eq("pojo", Mapper.toJson(new Out()), "{\"name\":\"n\",\"count\":2,\"items\":[1,\"two\",null,\"SMALL\"],\"active\":true}");
        eq("record", Mapper.toJson(new Point(1, 2, null)), "{\"x\":1,\"y\":2}");
        Map<Object, Object> m = new LinkedHashMap<>();
        m.put(1, null);
        m.put("b", new int[] {1, 2});
        m.put("c", "bytes".getBytes());
        m.put("d", Optional.of(3));
        m.put("e", 1.5f);
        m.put("f", new BigInteger("123456789012345678901234567890"));
        eq("map keeps nulls", Mapper.toJson(m), "{\"1\":null,\"b\":[1,2],\"c\":\"Ynl0ZXM=\",\"d\":3,\"e\":1.5,\"f\":123456789012345678901234567890}");
        eq("string", Mapper.toJson("s\n"), "\"s\\n\"");
        eq("null", Mapper.toJson(null), "null");
        fails("cycle", () -> Mapper.toJson(new Cycle()));
    }
}
