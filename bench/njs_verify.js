// The "nginx-njs" peer of hookgate's benchmark: what an nginx user would write by
// hand to verify VECU webhooks in nginx itself (njs, libnginx-mod-http-js) before
// proxying to the app. Checks: POST, X-VECU-Timestamp within 300 s of now (past or
// future), X-VECU-Signature = "sha256=" + hex HMAC-SHA256(secret, ts + "." + body)
// on the raw body bytes, compared in constant time. Then an internal redirect to
// the proxying location. No envelope parsing and no deduplication (hookgate does both).
//
// nginx.conf:  env VECU_WEBHOOK_SECRET;   js_import verify from njs_verify.js;
//              location = /webhooks/vecu { js_content verify.verify; }
//              location @upstream { proxy_pass http://app; ... }
const crypto = require('crypto');

const SECRET = process.env.VECU_WEBHOOK_SECRET || '';
const TOLERANCE_S = 300;

function reject(r, status, reason) {
    r.headersOut['Content-Type'] = 'application/json';
    r.return(status, JSON.stringify({error: reason}));
}

function sameText(a, b) {
    if (a.length !== b.length) {
        return false;
    }
    let diff = 0;
    for (let i = 0; i < a.length; i++) {
        diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
    }
    return diff === 0;
}

function verify(r) {
    if (r.method !== 'POST') {
        r.headersOut['Allow'] = 'POST';
        return reject(r, 405, 'method_not_allowed');
    }
    if (SECRET.length < 32) {
        return reject(r, 500, 'secret_not_configured');
    }
    const ts = r.headersIn['X-VECU-Timestamp'];
    if (ts === undefined) {
        return reject(r, 401, 'timestamp_missing');
    }
    if (!/^[0-9]{1,12}$/.test(ts)) {
        return reject(r, 401, 'timestamp_invalid');
    }
    if (Math.abs(Date.now() / 1000 - Number(ts)) > TOLERANCE_S) {
        return reject(r, 401, 'timestamp_outside_window');
    }
    const sig = r.headersIn['X-VECU-Signature'];
    if (sig === undefined) {
        return reject(r, 401, 'signature_missing');
    }
    if (!/^sha256=[0-9a-fA-F]{64}$/.test(sig)) {
        return reject(r, 401, 'signature_malformed');
    }
    const body = r.requestBuffer;  // undefined if nginx spooled the body to a file
    if (body === undefined) {
        return reject(r, 413, 'body_not_in_memory');
    }
    const expected = crypto.createHmac('sha256', SECRET)
        .update(ts + '.')
        .update(body)
        .digest('hex');
    if (!sameText(sig.slice(7).toLowerCase(), expected)) {
        return reject(r, 401, 'signature_mismatch');
    }
    r.internalRedirect('@upstream');
}

export default {verify};
