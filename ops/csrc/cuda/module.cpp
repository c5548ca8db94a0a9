// Python bindings of the CUDA kernels: ops._cuda. Pointers are device pointers from
// tensor.data_ptr(); `stream` is torch.cuda.current_stream().cuda_stream.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <stdexcept>

#include "../common/problem.h"
#include "kernels.h"

namespace py = pybind11;
using recforge::Problem;
using recforge::UpdateArgs;
using recforge::cuda::Launch;
using recforge::cuda::Segments;

PYBIND11_MODULE(_cuda, m) {
  m.doc() = "RecForge fused multi-table embedding bag: CUDA kernels on raw device pointers.";
  m.attr("ABI_VERSION") = recforge::kAbiVersion;

  py::class_<Problem>(m, "Problem", py::module_local())
      .def(py::init(&recforge::make_problem), py::arg("rows"), py::arg("dims"),
           py::arg("batch_size"), py::arg("indices"), py::arg("index_bits"),
           py::arg("num_indices"), py::arg("offsets"), py::arg("per_sample_weights"),
           py::arg("mean"), py::arg("scalar_bits"));

  py::class_<UpdateArgs>(m, "Update", py::module_local())
      .def(py::init(&recforge::make_update), py::arg("optimizer"), py::arg("target"),
           py::arg("momentum1") = 0, py::arg("momentum2") = 0, py::arg("lr") = 0.0,
           py::arg("eps") = 0.0, py::arg("beta1") = 0.0, py::arg("beta2") = 0.0,
           py::arg("step") = 0);

  py::class_<Launch>(m, "Launch", py::module_local())
      .def(py::init([](uintptr_t tables, uintptr_t stream) {
             if (tables == 0) throw std::invalid_argument("tables pointer is null");
             return Launch{tables, stream};
           }),
           py::arg("tables"), py::arg("stream"));

  py::class_<Segments>(m, "Segments", py::module_local())
      .def(py::init([](uintptr_t positions, uintptr_t begin, uintptr_t row,
                       uintptr_t bag_of_position, int64_t num_segments) {
             if (num_segments < 0) throw std::invalid_argument("num_segments must be >= 0");
             if (num_segments > 0 && (positions == 0 || begin == 0 || row == 0 ||
                                       bag_of_position == 0)) {
               throw std::invalid_argument("segment pointers must not be null");
             }
             return Segments{positions, begin, row, bag_of_position, num_segments};
           }),
           py::arg("positions"), py::arg("begin"), py::arg("row"), py::arg("bag_of_position"),
           py::arg("num_segments"));

  m.def("forward", &recforge::cuda::forward, py::arg("problem"), py::arg("launch"),
        py::arg("weights"), py::arg("out"), py::call_guard<py::gil_scoped_release>());
  m.def("grad_per_sample_weights", &recforge::cuda::grad_per_sample_weights, py::arg("problem"),
        py::arg("launch"), py::arg("grad_out"), py::arg("weights"), py::arg("grad_psw"),
        py::call_guard<py::gil_scoped_release>());
  m.def("backward", &recforge::cuda::backward, py::arg("problem"), py::arg("launch"),
        py::arg("segments"), py::arg("grad_out"), py::arg("update"),
        py::call_guard<py::gil_scoped_release>());
}
