package cn.gridsync.demo.platform

import android.content.Context
import android.security.keystore.KeyGenParameterSpec
import android.security.keystore.KeyProperties
import android.util.AtomicFile
import cn.gridsync.demo.logic.KeyStore
import java.io.File
import java.io.FileNotFoundException
import java.security.KeyStore as JcaKeyStore
import javax.crypto.Cipher
import javax.crypto.KeyGenerator
import javax.crypto.SecretKey
import javax.crypto.spec.GCMParameterSpec

/**
 * The logic's [KeyStore] on Android: the Android Keystore wraps each device's root key.
 *
 * The engine needs the 32 bytes of the root key itself, and a key generated inside
 * the Android Keystore can never leave it. So the Keystore holds one AES-256 wrapping
 * key (generated there, not exportable, in the TEE or StrongBox where the phone has
 * one), and each device's random root key is kept in app-private storage
 * (`no_backup/keys/<deviceId>.key`, never in a backup) encrypted under it with
 * AES-GCM: a 12-byte IV, then the ciphertext and tag, with the device id as
 * associated data so a file cannot stand in for another device's. A copy of the
 * files without this phone's Keystore is unreadable.
 *
 * The wrapping key asks for no user authentication: a patrol syncs with the screen
 * locked, and the engine opens when the process starts in the background.
 *
 * Not compiled or run by CI (no Android SDK there); see README.
 */
class AndroidKeyStore(context: Context) : KeyStore {
    private val dir = File(context.noBackupFilesDir, "keys")

    @Synchronized
    override fun load(deviceId: String): ByteArray? {
        val stored = try {
            file(deviceId).readFully()
        } catch (e: FileNotFoundException) {
            return null
        }
        val cipher = Cipher.getInstance(TRANSFORMATION)
        cipher.init(Cipher.DECRYPT_MODE, wrappingKey(), GCMParameterSpec(TAG_BITS, stored, 0, IV_BYTES))
        cipher.updateAAD(deviceId.toByteArray())
        // A file that does not decrypt throws (AEADBadTagException): never a wrong key.
        return cipher.doFinal(stored, IV_BYTES, stored.size - IV_BYTES)
    }

    @Synchronized
    override fun save(deviceId: String, key: ByteArray) {
        val cipher = Cipher.getInstance(TRANSFORMATION)
        // The Keystore chooses the IV: it refuses one from the caller for encryption.
        cipher.init(Cipher.ENCRYPT_MODE, wrappingKey())
        cipher.updateAAD(deviceId.toByteArray())
        val sealed = cipher.iv + cipher.doFinal(key)
        dir.mkdirs()
        val file = file(deviceId)
        val out = file.startWrite()
        try {
            out.write(sealed)
            file.finishWrite(out) // fsyncs, then renames: durable when this returns
        } catch (e: Throwable) {
            file.failWrite(out)
            throw e
        }
    }

    @Synchronized
    override fun delete(deviceId: String) {
        file(deviceId).delete()
    }

    private fun file(deviceId: String) = AtomicFile(File(dir, "$deviceId.key"))

    /** The wrapping key, generated in the Android Keystore on first use. */
    private fun wrappingKey(): SecretKey {
        val keystore = JcaKeyStore.getInstance(PROVIDER).apply { load(null) }
        (keystore.getKey(ALIAS, null) as SecretKey?)?.let { return it }
        val spec = KeyGenParameterSpec.Builder(ALIAS, KeyProperties.PURPOSE_ENCRYPT or KeyProperties.PURPOSE_DECRYPT)
            .setBlockModes(KeyProperties.BLOCK_MODE_GCM)
            .setEncryptionPaddings(KeyProperties.ENCRYPTION_PADDING_NONE)
            .setKeySize(256)
            .build()
        return KeyGenerator.getInstance(KeyProperties.KEY_ALGORITHM_AES, PROVIDER)
            .apply { init(spec) }
            .generateKey()
    }

    private companion object {
        const val PROVIDER = "AndroidKeyStore"
        const val ALIAS = "gridsync.root-key-wrap"
        const val TRANSFORMATION = "AES/GCM/NoPadding"
        const val IV_BYTES = 12
        const val TAG_BITS = 128
    }
}
