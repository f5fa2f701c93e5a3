// Offline sigstore services for promoter's signing tests, on 127.0.0.1:
//
//   POST /api/v2/signingCert   Fulcio (@sigstore/mock's CA + CT log)
//   POST /api/v1/log/entries   Rekor v1 (@sigstore/mock's log)
//   POST /api/v2/log/entries   Rekor v2 (hashedrekord v0.0.2 only, as rekor-tiles;
//                              a log of its own key, checkpoints signed as @sigstore/mock's)
//   POST /api/v1/timestamp     an RFC 3161 timestamp authority (@sigstore/mock's
//                              TSA, JSON requests as sigstore/timestamp-authority takes)
//   GET  /oidc/token           a GitHub-Actions-shaped ID token endpoint
//   GET  /stats                request counts per kind, as JSON
//
// @sigstore/mock 0.12.1 only wires its handlers into nock; this file serves
// them over plain HTTP and adds what real Fulcio and Rekor do and real
// clients rely on (see DESIGN.md, "Signing"):
//   - Fulcio: the token may come as `Authorization: Bearer`; its signature,
//     issuer and audience are checked; a CSR may be base64 of a PEM; the
//     proof of possession is checked; the SAN of a GitHub token is
//     `https://github.com/<job_workflow_ref>` as real Fulcio makes it.
//   - Rekor: dsse entries are stored in Rekor's canonical form
//     (envelopeHash, payloadHash, signatures with verifiers), and PEMs are
//     re-encoded as Rekor does (64-column lines, final newline).
//
// Usage: node server.js <out-dir>. Writes <out-dir>/trusted_root.json and
// <out-dir>/trust_config.json (sigstore-python's --trust-config), then prints
// `listening on 127.0.0.1:<port>` and serves until killed.
//
// Environment: OIDC_AUD_ARRAY=1 issues `aud` as an array; OIDC_FAILURES=N
// answers the first N token requests with 503 (to exercise retries);
// REKOR_V2_ROGUE=1 signs the v2 log's checkpoints with a key the trusted root
// does not list (a log that is not the one it claims to be).

'use strict';

const http = require('http');
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const jose = require('jose');
const mock = require('@sigstore/mock');
const canonicalize = require('canonicalize');
const { generateKeyPair } = require('@sigstore/mock/dist/util/key');

const ISSUER = 'https://token.actions.githubusercontent.com';
const REQUEST_TOKEN = 'test-request-token';

const stats = { fulcio: 0, rekor: 0, rekor_hashedrekord: 0, rekor_dsse: 0, oidc: 0, rejected: 0, tsa: 0, rekor_v2: 0 };

function pemOf(der, label) {
  const b64 = Buffer.from(der).toString('base64');
  const lines = b64.match(/.{1,64}/g) || [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

function derOfPem(pem) {
  return Buffer.from(pem.replace(/-----(BEGIN|END) [^-]*-----/g, '').replace(/\s/g, ''), 'base64');
}

function labelOf(pem) {
  const m = /-----BEGIN ([^-]*)-----/.exec(pem);
  return m ? m[1] : 'CERTIFICATE';
}

// Rekor re-encodes PEMs it stores.
function reencodePemB64(b64) {
  const pem = Buffer.from(b64, 'base64').toString('utf8');
  return Buffer.from(pemOf(derOfPem(pem), labelOf(pem))).toString('base64');
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function send(res, status, body, type) {
  const bytes = Buffer.from(body || '');
  res.writeHead(status, { 'Content-Type': type || 'application/json', 'Content-Length': bytes.length });
  res.end(bytes);
}

// Base64url of the payload must contain both `-` and `_`, as GitHub's
// tokens often do: pad a claim until it does.
async function issueToken(oidcKey, audArray) {
  const now = Math.floor(Date.now() / 1000);
  const claims = {
    jti: crypto.randomUUID(),
    sub: 'repo:example/promotions:ref:refs/heads/main',
    aud: audArray ? ['sigstore'] : 'sigstore',
    ref: 'refs/heads/main',
    sha: 'b0d1c4e0a1c1f7a3c0c1d8f0a9b5c4d3e2f1a0b9',
    repository: 'example/promotions',
    repository_owner: 'example',
    repository_id: '123456',
    repository_owner_id: '654321',
    repository_visibility: 'public',
    run_id: '987654321',
    run_number: '42',
    run_attempt: '1',
    runner_environment: 'github-hosted',
    actor: 'promoter-bot',
    workflow: 'Promote images',
    event_name: 'push',
    job_workflow_ref: 'example/promotions/.github/workflows/promote.yml@refs/heads/main',
    job_workflow_sha: 'b0d1c4e0a1c1f7a3c0c1d8f0a9b5c4d3e2f1a0b9',
    workflow_ref: 'example/promotions/.github/workflows/promote.yml@refs/heads/main',
    workflow_sha: 'b0d1c4e0a1c1f7a3c0c1d8f0a9b5c4d3e2f1a0b9',
    iss: ISSUER,
    nbf: now - 5,
    iat: now - 5,
    exp: now + 300,
  };
  for (let pad = ''; ; pad += '?') {
    claims.actor = 'promoter-bot' + pad + '\u00ff\u00fe>';
    const b64 = Buffer.from(JSON.stringify(claims)).toString('base64url');
    if (b64.includes('-') && b64.includes('_')) break;
  }
  return new jose.SignJWT(claims)
    .setProtectedHeader({ alg: 'ES256', typ: 'JWT', kid: 'promoter-test' })
    .sign(oidcKey);
}

async function main() {
  const outDir = process.argv[2];
  if (!outDir) throw new Error('usage: node server.js <out-dir>');
  const audArray = process.env.OIDC_AUD_ARRAY === '1';
  let failures = Number(process.env.OIDC_FAILURES || '0');

  const oidc = await jose.generateKeyPair('ES256');
  const caKeys = generateKeyPair('prime256v1');
  const ctKeys = generateKeyPair('prime256v1');
  const tlogKeys = generateKeyPair('prime256v1');
  const tlogV2Keys = generateKeyPair('prime256v1');
  const tsaKeys = generateKeyPair('prime256v1');
  const tsa = await mock.initializeTSA(tsaKeys);
  // Whole seconds: pkijs writes milliseconds into TSTInfo's genTime when
  // there are any, which RFC 3161 allows and sigstore-verify 0.15 cannot
  // read (`der`'s GeneralizedTime), see docs/signing.md.
  tsa.getCurrentTime = () => new Date(Math.floor(Date.now() / 1000) * 1000);
  const timestamp = mock.tsaHandler(tsa);
  const ctlog = await mock.initializeCTLog(ctKeys);
  const ca = await mock.initializeCA(caKeys, ctlog);
  const fulcio = mock.fulcioHandler(ca, { subjectClaim: 'promoter_san' });

  const server = http.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${server.address().port}`;
  const tlog = await mock.initializeTLog(base, tlogKeys);
  const rekor = mock.rekorHandler(tlog);
  const rogue = process.env.REKOR_V2_ROGUE === '1';
  const tlogV2 = await mock.initializeTLog(base, rogue ? generateKeyPair('prime256v1') : tlogV2Keys);

  const start = new Date(Date.now() - 3600 * 1000).toISOString();
  const keyId = (der) => crypto.createHash('sha256').update(der).digest('base64');
  const tlogDer = tlogKeys.publicKey.export({ format: 'der', type: 'spki' });
  const tlogV2Der = tlogV2Keys.publicKey.export({ format: 'der', type: 'spki' });
  const ctDer = ctKeys.publicKey.export({ format: 'der', type: 'spki' });
  const trustedRoot = {
    mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
    tlogs: [{
      baseUrl: base,
      hashAlgorithm: 'SHA2_256',
      publicKey: { rawBytes: tlogDer.toString('base64'), keyDetails: 'PKIX_ECDSA_P256_SHA_256', validFor: { start } },
      logId: { keyId: keyId(tlogDer) },
    }, {
      baseUrl: base,
      hashAlgorithm: 'SHA2_256',
      publicKey: { rawBytes: tlogV2Der.toString('base64'), keyDetails: 'PKIX_ECDSA_P256_SHA_256', validFor: { start } },
      logId: { keyId: keyId(tlogV2Der) },
    }],
    certificateAuthorities: [{
      subject: { organization: 'sigstore.mock', commonName: 'sigstore' },
      uri: base,
      certChain: { certificates: [{ rawBytes: ca.rootCertificate.toString('base64') }] },
      validFor: { start },
    }],
    ctlogs: [{
      baseUrl: base,
      hashAlgorithm: 'SHA2_256',
      publicKey: { rawBytes: ctDer.toString('base64'), keyDetails: 'PKIX_ECDSA_P256_SHA_256', validFor: { start } },
      logId: { keyId: keyId(ctDer) },
    }],
    timestampAuthorities: [{
      subject: { organization: 'sigstore.mock', commonName: 'tsa' },
      uri: base + '/api/v1/timestamp',
      certChain: { certificates: [tsa.intCertificate, tsa.rootCertificate].map((c) => ({ rawBytes: Buffer.from(c).toString('base64') })) },
      validFor: { start },
    }],
  };
  const service = (url) => [{ url, majorApiVersion: 1, validFor: { start }, operator: 'promoter-test' }];
  const trustConfig = {
    mediaType: 'application/vnd.dev.sigstore.clienttrustconfig.v0.1+json',
    trustedRoot,
    signingConfig: {
      mediaType: 'application/vnd.dev.sigstore.signingconfig.v0.2+json',
      caUrls: service(base),
      oidcUrls: service(base + '/oidc'),
      rekorTlogUrls: service(base),
      tsaUrls: [],
      rekorTlogConfig: { selector: 'ANY' },
      tsaConfig: { selector: 'ANY' },
    },
  };
  fs.writeFileSync(path.join(outDir, 'trusted_root.json'), JSON.stringify(trustedRoot, null, 2));
  fs.writeFileSync(path.join(outDir, 'trust_config.json'), JSON.stringify(trustConfig, null, 2));

  server.on('request', async (req, res) => {
    try {
      const url = new URL(req.url, base);
      if (req.method === 'GET' && url.pathname === '/stats') {
        return send(res, 200, JSON.stringify(stats));
      }
      if (req.method === 'GET' && url.pathname === '/oidc/token') {
        stats.oidc++;
        if ((req.headers.authorization || '') !== `bearer ${REQUEST_TOKEN}`) {
          return send(res, 401, JSON.stringify({ message: 'bad request token' }));
        }
        if (url.searchParams.get('audience') !== 'sigstore') {
          return send(res, 400, JSON.stringify({ message: 'audience must be sigstore' }));
        }
        if (failures > 0) {
          failures--;
          return send(res, 503, JSON.stringify({ message: 'try again' }));
        }
        return send(res, 200, JSON.stringify({ count: 1, value: await issueToken(oidc.privateKey, audArray) }));
      }
      if (req.method === 'POST' && url.pathname === '/api/v2/signingCert') {
        stats.fulcio++;
        const request = JSON.parse(await readBody(req));
        const auth = req.headers.authorization || '';
        const token = (request.credentials && request.credentials.oidcIdentityToken) ||
          (auth.toLowerCase().startsWith('bearer ') ? auth.slice(7) : '');
        let claims;
        try {
          ({ payload: claims } = await jose.jwtVerify(token, oidc.publicKey, { issuer: ISSUER, audience: 'sigstore' }));
        } catch (e) {
          stats.rejected++;
          return send(res, 401, JSON.stringify({ message: `invalid identity token: ${e.message}` }));
        }
        if (request.certificateSigningRequest && !request.certificateSigningRequest.startsWith('-----')) {
          request.certificateSigningRequest = Buffer.from(request.certificateSigningRequest, 'base64').toString('utf8');
        }
        if (request.publicKeyRequest) {
          const key = crypto.createPublicKey(request.publicKeyRequest.publicKey.content);
          const pop = Buffer.from(request.publicKeyRequest.proofOfPossession || '', 'base64');
          if (!crypto.verify('sha256', Buffer.from(claims.sub), key, pop)) {
            stats.rejected++;
            return send(res, 400, JSON.stringify({ message: 'proof of possession does not verify' }));
          }
        }
        claims.promoter_san = claims.job_workflow_ref
          ? `https://github.com/${claims.job_workflow_ref}`
          : claims.sub;
        const unsigned = [
          Buffer.from(JSON.stringify({ alg: 'none' })).toString('base64url'),
          Buffer.from(JSON.stringify(claims)).toString('base64url'),
          '',
        ].join('.');
        request.credentials = { oidcIdentityToken: unsigned };
        const out = await fulcio.fn(JSON.stringify(request));
        return send(res, out.statusCode, out.response, out.contentType);
      }
      if (req.method === 'POST' && url.pathname === '/api/v1/timestamp') {
        stats.tsa++;
        const out = await timestamp.fn(await readBody(req));
        return send(res, out.statusCode, Buffer.from(out.response), out.contentType);
      }
      if (req.method === 'POST' && url.pathname === '/api/v2/log/entries') {
        stats.rekor_v2++;
        const out = rekorV2Entry(tlogV2, tlogV2Der, JSON.parse(await readBody(req)));
        return send(res, out.statusCode, out.response);
      }
      if (req.method === 'POST' && url.pathname === '/api/v1/log/entries') {
        stats.rekor++;
        const entry = JSON.parse(await readBody(req));
        if (entry.kind === 'dsse') {
          stats.rekor_dsse++;
          const envelopeText = entry.spec.proposedContent.envelope;
          const envelope = JSON.parse(envelopeText);
          const verifiers = entry.spec.proposedContent.verifiers.map(reencodePemB64);
          const sha = (b) => crypto.createHash('sha256').update(b).digest('hex');
          entry.spec = {
            envelopeHash: { algorithm: 'sha256', value: sha(Buffer.from(envelopeText)) },
            payloadHash: { algorithm: 'sha256', value: sha(Buffer.from(envelope.payload, 'base64')) },
            signatures: envelope.signatures.map((s) => ({ signature: s.sig, verifier: verifiers[0] })),
          };
        } else if (entry.kind === 'hashedrekord') {
          stats.rekor_hashedrekord++;
          const key = entry.spec.signature.publicKey;
          key.content = reencodePemB64(key.content);
        }
        const out = await rekor.fn(JSON.stringify(entry));
        return send(res, out.statusCode, out.response, out.contentType);
      }
      send(res, 404, JSON.stringify({ message: 'not found' }));
    } catch (e) {
      send(res, 500, JSON.stringify({ message: String(e && e.stack || e) }));
    }
  });
  process.stdout.write(`listening on 127.0.0.1:${server.address().port}\n`);
}

// Rekor v2: a CreateEntryRequest with a hashedRekordRequestV002 becomes a
// TransparencyLogEntry whose canonicalized body is rekor-tiles' Entry
// (RFC 8785 JSON of apiVersion, kind, spec.hashedRekordV002 with data and
// signature), with no SET and no integrated time. Each entry is the one leaf
// of its own tree (index 0, size 1, root = leaf hash), with a signed checkpoint.
function rekorV2Entry(tlogV2, logDer, request) {
  const h = request.hashedRekordRequestV002;
  if (!h || !h.digest || !h.signature || !h.signature.content || !h.signature.verifier) {
    return { statusCode: 400, response: JSON.stringify({ message: 'only hashedRekordRequestV002 with digest and signature is accepted' }) };
  }
  const body = Buffer.from(canonicalize({
    apiVersion: '0.0.2',
    kind: 'hashedrekord',
    spec: {
      hashedRekordV002: {
        data: { algorithm: 'SHA2_256', digest: h.digest },
        signature: { content: h.signature.content, verifier: h.signature.verifier },
      },
    },
  }));
  const logID = crypto.createHash('sha256').update(logDer).digest();
  const timestamp = Math.floor(Date.now() / 1000);
  const proof = tlogV2.calculateInclusionProof({ body, timestamp, logID });
  const entry = {
    logIndex: '0',
    logId: { keyId: logID.toString('base64') },
    kindVersion: { kind: 'hashedrekord', version: '0.0.2' },
    inclusionProof: {
      logIndex: '0',
      rootHash: Buffer.from(proof.rootHash, 'hex').toString('base64'),
      treeSize: String(proof.treeSize),
      hashes: [],
      checkpoint: { envelope: proof.checkpoint },
    },
    canonicalizedBody: body.toString('base64'),
  };
  return { statusCode: 201, response: JSON.stringify(entry) };
}

main().catch((e) => {
  process.stderr.write(String(e && e.stack || e) + '\n');
  process.exit(1);
});
