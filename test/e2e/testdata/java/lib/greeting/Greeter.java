package greeting;

/** Lives in lib/greeting.jar of the deployment package. */
public final class Greeter {
    private Greeter() {
    }

    public static String greet(String name) {
        return "Hello, " + name + "!";
    }
}
