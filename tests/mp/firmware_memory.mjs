// Memory report of the whole firmware on the real MicroPython (printed by `make test`).
//
//   node tests/mp/firmware_memory.mjs BUNDLE_DIR
//
// Runs the bundle's compiled modules (the emulator bundle: byte for byte the modules a
// Pico gets) with the dummy ports of firmware_memory.py and prints:
//   the live heap after gc.collect() with the firmware running, the full library
//     loaded and a channel infusing (and the bare interpreter's, for comparison)
//   bytes allocated per idle loop turn (goal: 0) and per command
// This WebAssembly build collects garbage only when no Python code runs (at the start
// of a call from JavaScript), so each figure is taken across separate calls: one asks
// for a collection, the next one runs after it and reads gc.mem_alloc().
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";
import fs from "node:fs";
import path from "node:path";

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..", "..");
const bundleDir = process.argv[2];
if (!bundleDir) {
  process.stderr.write("usage: node tests/mp/firmware_memory.mjs BUNDLE_DIR\n");
  process.exit(2);
}
const mp = await loadMicroPython({
  stdout: (line) => process.stdout.write(line + "\n"),
  stderr: (line) => process.stderr.write(line + "\n"),
});

function copyTree(srcDir, dstDir, keep) {
  try { mp.FS.mkdir(dstDir); } catch (e) { /* exists */ }
  for (const name of fs.readdirSync(srcDir).sort()) {
    const src = path.join(srcDir, name);
    if (fs.statSync(src).isDirectory()) {
      if (name !== "__pycache__") copyTree(src, dstDir + "/" + name, keep);
    } else if (keep(name)) {
      mp.FS.writeFile(dstDir + "/" + name, fs.readFileSync(src));
    }
  }
}
copyTree(path.resolve(bundleDir), "", () => true);
copyTree(path.join(root, "tests"), "/tests", (n) => n.endsWith(".py"));

const py = (code) => mp.runPython(code);
function value(expr) {
  py(`_value = ${expr}`);
  return mp.globals.get("_value");
}
function liveHeap() {
  py("gc.collect()"); // asks for a collection: it runs when the next call starts
  return value("gc.mem_alloc()");
}

try {
  py("import gc, sys\nsys.path[:] = ['', '/', '/lib']");
  const bare = liveHeap();
  py("import tests.mp.firmware_memory as m"); // every firmware module, not yet started
  const modules = liveHeap();
  py("m.boot()");
  const hello = value("m.hello()");
  const start = value("m.request('START', m.NOREPI)");
  if (hello !== "HELLO_R" || start !== "START_R") throw new Error(`setup: ${hello}, ${start}`);
  py("m.prepare()\nfor _ in range(3): m.idle_turns()"); // settle: first saves, events
  const live = liveHeap();
  py("gc.collect()");
  const idle = value("m.idle_turns()");
  const perCommand = [];
  for (const name of ["HEARTBEAT", "STATUS", "START", "TITRATE", "STOP", "LOG"]) {
    py("gc.collect()");
    py(`_used, _answer = m.command('${name}')`);
    const [used, answer] = [mp.globals.get("_used"), mp.globals.get("_answer")];
    perCommand.push(`${name} ${used}${answer && answer.endsWith("_R") ? "" : " (" + answer + ")"}`);
  }
  const manifest = JSON.parse(fs.readFileSync(path.join(bundleDir, "manifest.json"), "utf8"));
  console.log(`firmware memory (MicroPython, bundle ${manifest.bundle.slice(0, 8)}):`);
  console.log(
    `  live heap after gc.collect(): ${live} bytes, firmware running with the full ` +
      `library loaded and a channel infusing (bare interpreter: ${bare} bytes; with every ` +
      `module imported, before boot: ${modules} bytes)`,
  );
  console.log(`  idle loop turn: ${idle} bytes allocated per turn (goal 0)`);
  console.log(`  per command, bytes allocated: ${perCommand.join(", ")}`);
  process.exit(idle === 0 ? 0 : 1);
} catch (err) {
  process.stderr.write(String(err.message || err) + "\n");
  process.exit(1);
}
