// The ArkTS types of libgridsync_napi.so (entry/src/main/cpp/types/libgridsync_napi/).

/** An open engine; freed when collected. */
export interface Engine {}

/** How a call failed: `code` is the gridsync status name, e.g. `GRIDSYNC_STATUS_WIPED`. */
export interface GridsyncError extends Error {
  code: string
}

/** Open the encrypted database; `key` is the 32-byte root key unwrapped from HUKS. */
export const open: (path: string, userId: string, deviceId: string, key: ArrayBuffer) => Promise<Engine>;

/** Report a case (the JSON of bindings/c/README.md); resolves to its id. */
export const reportCase: (engine: Engine, caseJson: string) => Promise<string>;

/** Push, pull and upload photos. */
export const sync: (engine: Engine) => Promise<{ pushed: number, pulled: number, photosUploaded: number }>;
