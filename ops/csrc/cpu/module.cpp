// Python bindings of the CPU kernels: ops._cpu. Arguments are validated in Python (ops/backends)
// and again for consistency here; pointers are the integers returned by tensor.data_ptr().
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <stdexcept>

#include "../common/problem.h"
#include "kernels.h"

namespace py = pybind11;
using recforge::Problem;
using recforge::UpdateArgs;

namespace {

int checked_threads(int num_threads) {
  if (num_threads < 1) throw std::invalid_argument("num_threads must be >= 1");
  return num_threads;
}

}  // namespace

PYBIND11_MODULE(_cpu, m) {
  m.doc() = "RecForge fused multi-table embedding bag: C++ CPU kernels on raw pointers.";
  m.attr("ABI_VERSION") = recforge::kAbiVersion;

  m.def("isa", &recforge::cpu::isa, "The instruction set the kernels run with.");
  m.def("supported_isas", &recforge::cpu::supported_isas,
        "The instruction sets this CPU can run the kernels with.");
  m.def("set_isa", &recforge::cpu::set_isa, py::arg("name"),
        "Switch to one of supported_isas() (for tests and benchmarks).");

  py::class_<Problem>(m, "Problem", py::module_local())
      .def(py::init(&recforge::make_problem), py::arg("rows"), py::arg("dims"),
           py::arg("batch_size"), py::arg("indices"), py::arg("index_bits"),
           py::arg("num_indices"), py::arg("offsets"), py::arg("per_sample_weights"),
           py::arg("mean"), py::arg("scalar_bits"))
      .def_property_readonly("total_dim", [](const Problem& p) { return p.total_dim; })
      .def_property_readonly("num_weights", [](const Problem& p) { return p.num_weights; });

  py::class_<UpdateArgs>(m, "Update", py::module_local())
      .def(py::init(&recforge::make_update), py::arg("optimizer"), py::arg("target"),
           py::arg("momentum1") = 0, py::arg("momentum2") = 0, py::arg("lr") = 0.0,
           py::arg("eps") = 0.0, py::arg("beta1") = 0.0, py::arg("beta2") = 0.0,
           py::arg("step") = 0);

  m.def(
      "forward",
      [](const Problem& p, uintptr_t weights, uintptr_t out, int num_threads) {
        checked_threads(num_threads);
        py::gil_scoped_release release;
        recforge::cpu::forward(p, weights, out, num_threads);
      },
      py::arg("problem"), py::arg("weights"), py::arg("out"), py::arg("num_threads"));

  m.def(
      "first_invalid_index",
      [](const Problem& p, int num_threads) {
        checked_threads(num_threads);
        py::gil_scoped_release release;
        return recforge::cpu::first_invalid_index(p, num_threads);
      },
      py::arg("problem"), py::arg("num_threads"));

  m.def(
      "backward",
      [](const Problem& p, uintptr_t grad_out, const UpdateArgs& update, int num_threads) {
        checked_threads(num_threads);
        py::gil_scoped_release release;
        recforge::cpu::backward(p, grad_out, update, num_threads);
      },
      py::arg("problem"), py::arg("grad_out"), py::arg("update"), py::arg("num_threads"));

  m.def(
      "grad_per_sample_weights",
      [](const Problem& p, uintptr_t grad_out, uintptr_t weights, uintptr_t grad_psw,
         int num_threads) {
        checked_threads(num_threads);
        if (p.per_sample_weights == 0 && p.num_indices > 0) {
          throw std::invalid_argument("the problem has no per_sample_weights");
        }
        py::gil_scoped_release release;
        recforge::cpu::grad_per_sample_weights(p, grad_out, weights, grad_psw, num_threads);
      },
      py::arg("problem"), py::arg("grad_out"), py::arg("weights"), py::arg("grad_psw"),
      py::arg("num_threads"));
}
