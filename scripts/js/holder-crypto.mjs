// The holder page's only cryptography: a secp256k1 signature by the holder key over the digest the
// registry's /holder/prepare returns (FORMAT.md §13), made in the browser so the key never leaves
// the enterprise's machine. Bundled by `make static` (esbuild) into registry/static/holder-crypto.js;
// tests/pages/test_holder_page.py rebuilds it and checks the committed file is that build.
import { secp256k1 } from "@noble/curves/secp256k1";

function bytes(hex, size, what) {
  if (typeof hex !== "string" || !/^0x[0-9a-f]*$/.test(hex) || hex.length !== 2 + 2 * size) {
    throw new Error(what + " must be 0x + " + 2 * size + " lower-case hex digits");
  }
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = parseInt(hex.substr(2 + 2 * i, 2), 16);
  return out;
}

function hex(u8) {
  return "0x" + Array.from(u8, (b) => b.toString(16).padStart(2, "0")).join("");
}

// The holder id (urn:certledger:holder:secp256k1:0x<compressed public key>) of a private key.
export function holderId(privateKeyHex) {
  return "urn:certledger:holder:secp256k1:" + hex(secp256k1.getPublicKey(bytes(privateKeyHex, 32, "the private key"), true));
}

// proofValue: 0x + r ‖ s ‖ v (v = 27 + recovery), low s, as FORMAT.md §13 and the verifier require.
export function sign(digestHex, privateKeyHex) {
  const sig = secp256k1.sign(bytes(digestHex, 32, "the digest"), bytes(privateKeyHex, 32, "the private key"), { lowS: true });
  return hex(sig.toCompactRawBytes()) + (27 + sig.recovery).toString(16);
}
