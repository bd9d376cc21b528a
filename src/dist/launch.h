// How this process was started (no MPI needed to ask): the world size an MPI launcher announced in
// the environment (OpenMPI's OMPI_COMM_WORLD_SIZE, MPICH/Hydra's PMI_SIZE), or 1 when started
// directly. The CLI uses it to refuse `mpirun -np 4` of a build without DSV3_MPI, which would run
// four independent copies of one training job into the same folder.
#pragma once

namespace dsv3 {

int launcher_world_size();
// Whether this build has the MPI engine (CMake option DSV3_MPI).
bool mpi_built();

}  // namespace dsv3
