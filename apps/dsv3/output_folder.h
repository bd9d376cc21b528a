// The output folder of a command that writes a model (init, convert): an occupied folder is
// refused unless --force, and the disk must have room before the first byte is written.
#pragma once
#include <cstdint>
#include <string>

namespace dsv3::cli {

// An existing, non-empty output folder is refused unless `force`. Removes nothing: returns the
// bytes of the files a new model replaces there (for check_free_space), so that every check runs
// before anything is deleted.
uint64_t check_output(const std::string& dir, bool force);

// After every check: removes the old weight files (model*.safetensors,
// model.safetensors.index.json) and config.json, so that a stale shard or index cannot mix with the
// new ones, and a write that fails half-way (disk full, kill) leaves no config.json: the folder is
// never taken for a model (config.json is written last).
void clear_output(const std::string& dir);

// Throws Error (with `hint`) when the disk of `dir`, with `freed` bytes of old files counted as
// free, has less than `need` bytes plus a margin for headers and JSON files (1% + 64 MiB, which
// also leaves the disk usable).
void check_free_space(const std::string& dir, uint64_t need, uint64_t freed,
                      const std::string& hint);

}  // namespace dsv3::cli
