// Produces tests/assets/merkle_vectors.json with @openzeppelin/merkle-tree (the reference
// implementation of the StandardMerkleTree the AnchorRegistry checks on-chain).
//
//   node tests/assets/make_merkle_vectors.mjs > tests/assets/merkle_vectors.json
//
// Inputs are deterministic (keccak256 of a counter), so re-running gives byte-identical output.
import { createRequire } from "node:module";
const require = createRequire(import.meta.url);
const { StandardMerkleTree } = require("@openzeppelin/merkle-tree");
const { keccak256 } = require("ethereum-cryptography/keccak");

const hex = (bytes) => "0x" + Buffer.from(bytes).toString("hex");
const word = (label, i) => hex(keccak256(Buffer.from(`${label}:${i}`, "utf8")));

const sizes = [1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 31, 32, 33];
const trees = sizes.map((n) => {
  const values = Array.from({ length: n }, (_, i) => [word("targetHash", i), word("subjectHash", i)]);
  const tree = StandardMerkleTree.of(values, ["bytes32", "bytes32"]);
  return {
    size: n,
    values,
    root: tree.root,
    leaves: values.map((v) => tree.leafHash(v)),
    proofs: values.map((_, i) => tree.getProof(i)),
    tree: tree.dump().tree,
  };
});

process.stdout.write(
  JSON.stringify(
    {
      source: "@openzeppelin/merkle-tree " + require("@openzeppelin/merkle-tree/package.json").version,
      leafEncoding: ["bytes32", "bytes32"],
      trees,
    },
    null,
    1,
  ) + "\n",
);
