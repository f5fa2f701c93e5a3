// An independent verifier for the signing tests: sigstore-js
// (@sigstore/verify 4.1.3), offline, against the test trusted root.
//
// Usage: node verify.js <trusted_root.json> <bundle.json> <identity> <issuer> [artifact]
//
// The bundle may be a v0.3 DSSE bundle (as promoter stores referrers) or a
// v0.1 message-signature bundle (the tests build one from a legacy cosign
// `.sig` layer; then `artifact` is the simple-signing payload). Exit 0 when
// it verifies and matches identity and issuer; 1 with the reason otherwise.

'use strict';

const fs = require('fs');
const { TrustedRoot } = require('@sigstore/protobuf-specs');
const { bundleFromJSON } = require('@sigstore/bundle');
const { Verifier, toSignedEntity, toTrustMaterial } = require('@sigstore/verify');

function main() {
  const [rootPath, bundlePath, identity, issuer, artifactPath] = process.argv.slice(2);
  const root = TrustedRoot.fromJSON(JSON.parse(fs.readFileSync(rootPath, 'utf8')));
  const bundle = bundleFromJSON(JSON.parse(fs.readFileSync(bundlePath, 'utf8')));
  const artifact = artifactPath ? fs.readFileSync(artifactPath) : undefined;
  const verifier = new Verifier(toTrustMaterial(root), { tlogThreshold: 1, ctlogThreshold: 1 });
  verifier.verify(toSignedEntity(bundle, artifact), {
    subjectAlternativeName: identity,
    extensions: { issuer },
  });
  process.stdout.write('verified\n');
}

try {
  main();
} catch (e) {
  process.stderr.write(`${e && e.code ? e.code + ': ' : ''}${e && e.message ? e.message : e}\n`);
  process.exit(1);
}
