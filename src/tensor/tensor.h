// The tensor module's public header: storage dtypes and their f32 codecs, FP8 block scaling, and
// safetensors files and folders.
#pragma once
#include "tensor/block_format.h"
#include "tensor/block_scale.h"
#include "tensor/convert.h"
#include "tensor/dtype.h"
#include "tensor/fp8.h"
#include "tensor/half.h"
#include "tensor/safetensors.h"
#include "tensor/safetensors_folder.h"
