//! The device's root key and the keys derived from it. The app keeps the 256-bit
//! root key in the platform keystore (Android Keystore, iOS Keychain) and hands it
//! to the engine at open; the engine never writes it anywhere. Each use gets its own
//! key, derived with HKDF-SHA256 under a fixed label, so a key for one purpose says
//! nothing about another.

use hkdf::Hkdf;
use sha2::Sha256;

/// A 256-bit root key. Its `Debug` never shows the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceKey([u8; 32]);

/// What a derived key is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyUse {
    /// The SQLite database (SQLCipher's raw key).
    Database,
    /// Photo files (display images and thumbnails) and temporary files.
    Photos,
}

impl KeyUse {
    fn label(self) -> &'static [u8] {
        match self {
            KeyUse::Database => b"gridsync v1 database",
            KeyUse::Photos => b"gridsync v1 photos",
        }
    }
}

impl DeviceKey {
    /// The root key from its 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> DeviceKey {
        DeviceKey(bytes)
    }

    /// The root key from a slice, which must be exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<DeviceKey> {
        <[u8; 32]>::try_from(bytes).ok().map(DeviceKey)
    }

    /// The key for `use_`.
    pub fn derive(&self, use_: KeyUse) -> [u8; 32] {
        let hk = Hkdf::<Sha256>::new(None, &self.0);
        let mut out = [0u8; 32];
        // 32 bytes is far below HKDF-SHA256's limit of 8,160: this cannot fail.
        let _ = hk.expand(use_.label(), &mut out);
        out
    }
}

impl std::fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeviceKey(…)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_keys_differ_by_use_and_by_root() {
        let a = DeviceKey::from_bytes([7; 32]);
        let b = DeviceKey::from_bytes([8; 32]);
        assert_ne!(a.derive(KeyUse::Database), a.derive(KeyUse::Photos));
        assert_ne!(a.derive(KeyUse::Database), b.derive(KeyUse::Database));
        assert_eq!(a.derive(KeyUse::Photos), a.clone().derive(KeyUse::Photos));
        assert!(DeviceKey::from_slice(&[0; 31]).is_none());
        assert_eq!(format!("{a:?}"), "DeviceKey(…)");
    }
}
