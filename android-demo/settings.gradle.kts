// The Android demo: open this folder in Android Studio.
// :logic is plain Kotlin (also built and tested by Maven, logic/pom.xml);
// :app is the Compose application.
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}

dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        google()
        mavenCentral()
    }
}

rootProject.name = "gridsync-android-demo"
include(":app", ":logic")
