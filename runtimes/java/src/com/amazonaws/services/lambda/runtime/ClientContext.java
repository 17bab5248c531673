package com.amazonaws.services.lambda.runtime;

import java.util.Map;

/** What a mobile SDK caller said about itself (X-Amz-Client-Context). */
public interface ClientContext {

    /** The calling application. */
    Client getClient();

    /** Values the application set. */
    Map<String, String> getCustom();

    /** Facts about the device and SDK, such as "platform". */
    Map<String, String> getEnvironment();
}
