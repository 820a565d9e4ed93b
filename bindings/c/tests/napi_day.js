// Drives harmonyos/gridsync_napi.c, built as a Node.js addon, the way ArkTS would:
// open the worker's encrypted database, check a wrong key is refused with its code,
// report a case, sync. Prints {"caseId", "summary"} as JSON; exits 1 on a failure.
//
//   node napi_day.js ADDON.node DB_PATH USER_ID DEVICE_ID KEY_HEX

const [addon, db, user, device, keyHex] = process.argv.slice(2);
const gridsync = require(addon);

function buffer(bytes) {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length);
}

(async () => {
  const key = Buffer.from(keyHex, 'hex');
  const wrong = Buffer.from(key);
  wrong[0] ^= 1;
  const refused = await gridsync.open(db, user, device, buffer(wrong)).then(
    () => 'opened',
    (e) => e.code,
  );
  if (refused !== 'GRIDSYNC_STATUS_WRONG_KEY') {
    throw new Error(`a wrong key gave ${refused}`);
  }
  const engine = await gridsync.open(db, user, device, buffer(key));
  const caseId = await gridsync.reportCase(engine, JSON.stringify({
    title: '消防通道堵塞', category: 'safety', severity: 'high',
  }));
  const bad = await gridsync.reportCase(engine, '{"title": 1}').then(() => 'reported', (e) => e.code);
  if (bad !== 'GRIDSYNC_STATUS_INVALID_INPUT') {
    throw new Error(`bad JSON gave ${bad}`);
  }
  const summary = await gridsync.sync(engine);
  console.log(JSON.stringify({ caseId, summary }));
})().catch((e) => {
  console.error(`napi_day.js: ${e.code || ''} ${e.message}`);
  process.exit(1);
});
