// Runs a Python entry file on the real MicroPython interpreter (WebAssembly build).
//
//   node tests/mp/run.mjs [--heap BYTES] ENTRY.py [ARGS...]
//
// The board's filesystem is rebuilt in the interpreter's memory filesystem the way
// a flashed board holds it: the modules of the emulator board's bundle (`make mpy`:
// firmware/, protocol/ and boards/ compiled by mpy-cross), so what runs is what
// compiles for a board, the packages' .json data beside them (the drug library, and
// the golden vectors the tests read), and tests/ as source.  The exit code is 0
// only when the entry ran to its end and left EXIT_CODE unset or 0.
//
// gc.collect() in this WebAssembly build only collects once control has returned
// to JavaScript (while Python runs, the C stack is not scanned, so the collection
// is deferred).  An entry that needs true post-collection heap figures sets
// PHASES to a generator: between its steps this loader returns to JavaScript and
// runs gc.collect(), so code after each `yield` sees the heap as a board would
// after a real collection.
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";
import fs from "node:fs";
import path from "node:path";

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..", "..");
let args = process.argv.slice(2);
let heap = 1024 * 1024;
if (args[0] === "--heap") {
  heap = parseInt(args[1], 10);
  args = args.slice(2);
}
if (args.length < 1) {
  process.stderr.write("usage: node tests/mp/run.mjs [--heap BYTES] ENTRY.py [ARGS...]\n");
  process.exit(2);
}
const [entry, ...entryArgs] = args;

const mp = await loadMicroPython({
  heapsize: heap,
  stdout: (line) => process.stdout.write(line + "\n"),
  stderr: (line) => process.stderr.write(line + "\n"),
});

function copyTree(srcDir, dstDir, keep) {
  if (!fs.existsSync(srcDir)) return;
  try { mp.FS.mkdir(dstDir); } catch (e) { /* exists */ }
  for (const name of fs.readdirSync(srcDir).sort()) {
    const src = path.join(srcDir, name);
    const dst = dstDir + "/" + name;
    if (fs.statSync(src).isDirectory()) {
      if (name !== "__pycache__") copyTree(src, dst, keep);
    } else if (keep(name)) {
      mp.FS.writeFile(dst, fs.readFileSync(src));
    }
  }
}

const bundleDir = path.join(root, "build", "bundle", "emulator");
if (!fs.existsSync(path.join(bundleDir, "manifest.json"))) {
  process.stderr.write(`run.mjs: no bundle in ${bundleDir}: run 'make mpy' first\n`);
  process.exit(2);
}
for (const pkg of ["firmware", "protocol", "boards"]) {
  copyTree(path.join(bundleDir, pkg), "/" + pkg, (n) => n.endsWith(".mpy"));
  // data files beside the modules, the tests' own included (protocol/vectors.json)
  copyTree(path.join(root, pkg), "/" + pkg, (n) => n.endsWith(".json"));
}
copyTree(path.join(root, "tests"), "/tests", (n) => n.endsWith(".py") || n.endsWith(".json"));

const entryPath = "/" + path.relative(root, path.resolve(entry)).split(path.sep).join("/");
mp.globals.set("_ENTRY_ARGV", [entryPath, ...entryArgs].join("\n"));
try {
  mp.runPython(`
import sys
sys.path[:] = ['', '/', '/lib']
sys.argv[:] = _ENTRY_ARGV.split('\\n')
del _ENTRY_ARGV
EXIT_CODE = 0
PHASES = None
`);
  mp.runPython(new TextDecoder().decode(mp.FS.readFile(entryPath)));
  while (mp.globals.get("PHASES") !== undefined && mp.globals.get("PHASES") !== null) {
    mp.runPython("import gc\ngc.collect()");
    mp.runPython("try:\n    next(PHASES)\nexcept StopIteration:\n    PHASES = None");
  }
} catch (err) {
  process.stderr.write(String(err.message || err) + "\n");
  process.exit(1);
}
const code = mp.globals.get("EXIT_CODE");
process.exit(typeof code === "number" ? code : 1);
