// The same sources Maven builds (pom.xml): the logic layer plus the generated
// bindings from `scripts/bindings` (../../target/bindings/kotlin).
import org.jetbrains.kotlin.gradle.dsl.JvmTarget

plugins {
    id("org.jetbrains.kotlin.jvm")
}

val repoRoot = rootDir.parentFile

sourceSets {
    main {
        kotlin.srcDir(repoRoot.resolve("target/bindings/kotlin"))
    }
}

java {
    sourceCompatibility = JavaVersion.VERSION_17
    targetCompatibility = JavaVersion.VERSION_17
}

kotlin {
    compilerOptions { jvmTarget.set(JvmTarget.JVM_17) }
}

dependencies {
    api("org.jetbrains.kotlinx:kotlinx-coroutines-core:1.10.2")
    // The enrollment QR code's decoder (QrDecoder.kt); plain Java, as on the JVM.
    implementation("com.google.zxing:core:3.5.3")
    // The generated bindings need JNA to compile. The app brings the Android build
    // (jna@aar, with its native part); a JVM jar here would clash with it.
    compileOnly("net.java.dev.jna:jna:5.17.0")

    testImplementation("net.java.dev.jna:jna:5.17.0")
    testImplementation(platform("org.junit:junit-bom:5.14.1"))
    testImplementation("org.junit.jupiter:junit-jupiter")
    testRuntimeOnly("org.junit.platform:junit-platform-launcher")
}

tasks.test {
    useJUnitPlatform()
    // As in pom.xml: the host library and server from `scripts/bindings`.
    systemProperty("jna.library.path", repoRoot.resolve("target/debug").path)
    systemProperty("gridsync.bin", repoRoot.resolve("target/debug/gridsync").path)
    systemProperty("gridsync.photo", repoRoot.resolve("bindings/tests/python/photo.jpg").path)
}
