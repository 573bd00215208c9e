#!/usr/bin/env node
// The `herald` command: runs the built CLI (npm run build, which `npm install` does).
import "../dist/server/cli/main.js";
