package com.amazonaws.services.lambda.runtime;

/** The application that invoked the function through a mobile SDK. */
public interface Client {

    String getInstallationId();

    String getAppTitle();

    String getAppVersionName();

    String getAppVersionCode();

    String getAppPackageName();
}
