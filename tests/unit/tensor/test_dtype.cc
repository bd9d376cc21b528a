#include <gtest/gtest.h>

#include "base/error.h"
#include "tensor/dtype.h"

namespace dsv3 {
namespace {

TEST(DType, NamesRoundTripAndSizes) {
  for (DType t : {DType::F64, DType::F32, DType::F16, DType::BF16, DType::F8_E4M3, DType::F8_E5M2,
                  DType::I64, DType::I32, DType::I16, DType::I8, DType::U8, DType::BOOL})
    EXPECT_EQ(dtype_from_name(dtype_name(t)), t);
  EXPECT_EQ(dtype_size(DType::BF16), 2u);
  EXPECT_EQ(dtype_size(DType::F8_E4M3), 1u);
  EXPECT_EQ(dtype_size(DType::I64), 8u);
  EXPECT_EQ(dtype_name(DType::F8_E5M2), "F8_E5M2");
  EXPECT_FALSE(dtype_from_name("f32"));  // names are case-sensitive, as safetensors writes them
  EXPECT_FALSE(dtype_from_name("F8_E4M3FNUZ"));
  EXPECT_TRUE(dtype_is_float(DType::F8_E4M3));
  EXPECT_FALSE(dtype_is_float(DType::U8));
}

TEST(Shape, NumelAndErrors) {
  EXPECT_EQ(shape_numel({}), 1);
  EXPECT_EQ(shape_numel({2, 0}), 0);
  EXPECT_EQ(shape_numel({576, 7168}), 576 * 7168);
  EXPECT_EQ(shape_str({576, 7168}), "[576, 7168]");
  EXPECT_EQ(shape_str({}), "[]");
  EXPECT_THROW(shape_numel({3, -1}), Error);
  EXPECT_THROW(shape_numel({int64_t{1} << 40, int64_t{1} << 40}), Error);
  EXPECT_THROW(shape_numel({int64_t{1} << 40, int64_t{1} << 40, 0}), Error);  // prefix overflows
}

}  // namespace
}  // namespace dsv3
