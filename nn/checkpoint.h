// Checkpoints: a module's parameters (and optionally Adam's state) in one safetensors file.
//
// Metadata always holds "format" = "ncl-checkpoint" and "format_version"; callers add the
// model name, its configuration (JSON text), the training step and the seed. Parameter names
// are Module::named_parameters() names; optimizer state is stored as "adam.m.<name>",
// "adam.v.<name>" with the step in metadata "adam.step". Loading is exact: every parameter
// present with its shape and dtype, nothing unexpected, or an ncl::Error saying what differs.
#pragma once

#include <map>
#include <string>

#include "nn/module.h"
#include "nn/optim.h"
#include "tensor/safetensors.h"

namespace ncl::nn {

inline constexpr const char* kCheckpointFormat = "ncl-checkpoint";
inline constexpr int kCheckpointVersion = 1;

// Writes atomically (see safetensors.h). optimizer may be null.
void save_checkpoint(const std::string& path, const Module& module, const Adam* optimizer,
                     std::map<std::string, std::string> metadata);

// Reads the file and checks that it is an ncl checkpoint of a version we understand.
TensorFile load_checkpoint(const std::string& path);

// Copies the checkpoint's parameters into module (converted to each parameter's device).
void load_parameters(Module& module, const TensorFile& checkpoint);

// Restores Adam's moments and step from a checkpoint written with an optimizer.
void load_optimizer(Adam& optimizer, const TensorFile& checkpoint);

// Numbers in metadata: exact_decimal writes 17 significant digits, which read back to the
// same double; metadata_number parses such text (the whole of it, finite unless allow_inf)
// or throws ncl::Error naming the file, the key and the text.
std::string exact_decimal(double v);
double metadata_number(const std::string& text, const std::string& key, const std::string& path,
                       bool allow_inf = false);

}  // namespace ncl::nn
