#!/usr/bin/env node
// Build an OpenZeppelin StandardMerkleTree (leaf encoding ["bytes32", "bytes32"]) from JSON on stdin
// and print its root, leaf hashes and proofs as JSON on stdout. This is the independent reference
// the contract tests check the on-chain MerkleProof / leafHash against.
//
//   stdin:  {"values": [["0x<targetHash>", "0x<subjectHash>"], ...], "indices": [0, 5]}   // indices optional
//   stdout: {"root": "0x..", "leafHashes": {"0": "0x..", ..}, "proofs": {"0": ["0x..", ..], ..}}
import { StandardMerkleTree } from "@openzeppelin/merkle-tree";

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const input = JSON.parse(Buffer.concat(chunks).toString("utf8"));
const tree = StandardMerkleTree.of(input.values, ["bytes32", "bytes32"]);
const indices = input.indices ?? input.values.map((_, i) => i);
const leafHashes = {};
const proofs = {};
for (const i of indices) {
  leafHashes[i] = tree.leafHash(input.values[i]);
  proofs[i] = tree.getProof(i);
}
process.stdout.write(JSON.stringify({ root: tree.root, leafHashes, proofs }) + "\n");
