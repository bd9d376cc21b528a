// The launcher's world size from the environment: see launch.h.
#include "dist/launch.h"

#include <algorithm>
#include <cstdlib>
#include <string>

namespace dsv3 {

int launcher_world_size() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"}) {
    const char* v = std::getenv(var);
    if (v && *v) {
      try {
        return std::max(1, std::stoi(v));
      } catch (const std::exception&) {
        return 1;
      }
    }
  }
  return 1;
}

bool mpi_built() {
#ifdef DSV3_MPI
  return true;
#else
  return false;
#endif
}

}  // namespace dsv3
