// Signs with sigstore-js against @sigstore/mock's Fulcio, CT log and Rekor: an independent Sigstore
// implementation, so that tagrelay is tested on signatures it did not make itself.
//
// stdin:  {"claims": {OIDC token claims}, "payload": "<base64 bytes to sign>"}
// stdout: {"bundle": <message-signature bundle (hashedrekord)>, "root": "<base64 DER CA certificate>",
//          "ctlog": "<base64 DER SPKI>", "rekor": "<base64 DER SPKI>"}
// The mocks intercept HTTP in-process (nock): nothing leaves this process.
'use strict';

const crypto = require('crypto');
const nock = require('nock');
const mock = require('@sigstore/mock');
const sign = require('@sigstore/sign');
const { bundleToJSON } = require('@sigstore/bundle');

const FULCIO = 'https://fulcio.sigstore-js.test';
const REKOR = 'https://rekor.sigstore-js.test';

// nock hands the handler the body; @sigstore/mock's handlers answer {statusCode, response}.
function intercept(base, handler) {
  nock(base)
    .persist()
    .post(handler.path)
    .reply(async (_uri, body) => {
      const answer = await handler.fn(typeof body === 'string' ? body : JSON.stringify(body));
      return [answer.statusCode, answer.response, { 'Content-Type': answer.contentType || 'text/plain' }];
    });
}

async function main() {
  const input = JSON.parse(require('fs').readFileSync(0, 'utf8'));
  nock.disableNetConnect();

  const caKeys = crypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const rekorKeys = crypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const ctlog = await mock.initializeCTLog(caKeys);
  const ca = await mock.initializeCA(caKeys, ctlog);
  const tlog = await mock.initializeTLog(REKOR, rekorKeys);
  intercept(FULCIO, mock.fulcioHandler(ca));
  intercept(REKOR, mock.rekorHandler(tlog));

  // An unsigned JWT: the mock Fulcio reads the claims without verifying them.
  const part = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const token = `${part({ alg: 'none', typ: 'JWT' })}.${part(input.claims)}.`;
  const signer = new sign.FulcioSigner({
    identityProvider: { getToken: async () => token },
    fulcioBaseURL: FULCIO,
  });
  const witness = new sign.RekorWitness({ rekorBaseURL: REKOR });
  const builder = new sign.MessageSignatureBundleBuilder({ signer, witnesses: [witness] });
  const bundle = await builder.create({ data: Buffer.from(input.payload, 'base64') });

  process.stdout.write(
    JSON.stringify({
      bundle: bundleToJSON(bundle),
      root: Buffer.from(ca.rootCertificate).toString('base64'),
      ctlog: ctlog.publicKey.toString('base64'),
      rekor: tlog.publicKey.toString('base64'),
    })
  );
}

main().catch((error) => {
  process.stderr.write(`${error.stack || error}\n`);
  process.exit(1);
});
